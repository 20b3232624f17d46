// BalEnt's native kernel as torch operators: torch.ops.al_seg_balent.*
//
// Built by strategies/balent/native_kernel.py with torch.utils.cpp_extension (ninja, a file lock,
// a build folder per source, flags, compiler and torch version), loaded with
// torch.ops.load_library. The arithmetic is posterior_term_kernel.h, compiled here once per
// instruction set (x86-64 with GCC: AVX-512, AVX2, SSE2; elsewhere the compiler's default) with
// -ffp-contract=off, so every one gives the same bits; the best one the CPU runs is chosen at
// run time (isa_named), and an operator's `isa` argument can name another (the tests compare them).
// An image's blocks of pixels run on torch's own intra-op threads (at::parallel_for).
//
// Every tensor argument is checked (TORCH_CHECK: device, dtype, layout, shape); the outputs are
// allocated here.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)  // GCC's target pragmas
#define BALENT_X86 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx512cd,avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c,movbe")
namespace balent_avx512 {
#define LANES 8
#include "posterior_term_kernel.h"
#undef LANES
}  // namespace balent_avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,lzcnt,popcnt,f16c,movbe")
namespace balent_avx2 {
#define LANES 4
#include "posterior_term_kernel.h"
#undef LANES
}  // namespace balent_avx2
#pragma GCC pop_options
#endif
namespace balent_baseline {  // the compiler's default target: SSE2 on x86-64, NEON on aarch64
#define LANES 2
#include "posterior_term_kernel.h"
#undef LANES
}  // namespace balent_baseline

namespace {

// One instruction set's functions.
struct Isa {
  const char* name;
  void (*term_float32)(const float*, const float*, int64_t, int64_t, int64_t, int, double*, uint8_t*,
                       uint8_t*, const float*, double*);
  void (*term_float64)(const double*, const double*, int64_t, int64_t, int64_t, int, double*, uint8_t*,
                       uint8_t*, const double*, double*);
  void (*acquisition_float32)(const double*, const uint8_t*, const float*, int64_t, double*);
  void (*acquisition_float64)(const double*, const uint8_t*, const double*, int64_t, double*);
  void (*beta_entropy)(const double*, const double*, int64_t, int, double*);
  void (*log_positive)(const double*, int64_t, double*);
};

#define ISA_TABLE(NS, NAME)                                                                 \
  Isa{NAME, NS::posterior_term_float32, NS::posterior_term_float64,                          \
      NS::balent_acquisition_float32, NS::balent_acquisition_float64,                        \
      NS::beta_entropy_float64, NS::log_positive_float64}

#ifdef BALENT_X86
const Isa kIsas[] = {ISA_TABLE(balent_avx512, "avx512"), ISA_TABLE(balent_avx2, "avx2"),
                     ISA_TABLE(balent_baseline, "sse2")};
#else
const Isa kIsas[] = {ISA_TABLE(balent_baseline, "baseline")};
#endif

bool cpu_runs(const Isa& isa) {
#ifdef BALENT_X86
  __builtin_cpu_init();
  if (std::strcmp(isa.name, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa.name, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2");
#endif
  return true;  // the baseline
}

// The instruction set named `name` ("" = the best this CPU runs).
const Isa& isa_named(const std::string& name) {
  for (const Isa& isa : kIsas)
    if ((name.empty() || name == isa.name) && cpu_runs(isa))
      return isa;
  TORCH_CHECK(false, "BalEnt's native kernel: instruction set '", name, "' is unknown or not run by this CPU");
}

void check_cpu_contiguous(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu(), "BalEnt's native kernel: ", what, " must be on the CPU, got ", t.device());
  TORCH_CHECK(t.layout() == at::kStrided, "BalEnt's native kernel: ", what, " must be a strided (dense) tensor");
  TORCH_CHECK(t.is_contiguous(), "BalEnt's native kernel: ", what, " must be contiguous");
}

void check_statistic(const at::Tensor& t, const char* what) {
  check_cpu_contiguous(t, what);
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
              "BalEnt's native kernel: ", what, " must be float32 or float64, got ", t.scalar_type());
}

// The posterior term of contiguous means and variances [B, C, P] of one dtype, in blocks of
// `block_pixels` pixels on torch's threads: finite S (float64), saturated and fitted (bool), each
// [B, P]; with the predictive entropy H ([B, P], the statistics' dtype), BalEnt's acquisition
// values (float64 [B, P]) from the same pass, else an empty tensor.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> posterior_term_op(
    const at::Tensor& mean, const at::Tensor& var, bool floored, int64_t block_pixels,
    const std::optional<at::Tensor>& entropy, const std::string& isa_name) {
  check_statistic(mean, "the means");
  check_statistic(var, "the variances");
  TORCH_CHECK(mean.dim() == 3, "BalEnt's native kernel: the means must be [B, C, P], got ", mean.sizes());
  TORCH_CHECK(var.sizes() == mean.sizes(), "BalEnt's native kernel: the variances ", var.sizes(),
              " and the means ", mean.sizes(), " differ in shape");
  TORCH_CHECK(var.scalar_type() == mean.scalar_type(), "BalEnt's native kernel: the variances (",
              var.scalar_type(), ") and the means (", mean.scalar_type(), ") differ in dtype");
  TORCH_CHECK(block_pixels > 0, "BalEnt's native kernel: block_pixels must be positive, got ", block_pixels);
  const int64_t images = mean.size(0), classes = mean.size(1), pixels = mean.size(2);
  const bool with_scores = entropy.has_value();
  if (with_scores) {
    check_cpu_contiguous(*entropy, "the predictive entropy");
    TORCH_CHECK(entropy->scalar_type() == mean.scalar_type(), "BalEnt's native kernel: the predictive entropy (",
                entropy->scalar_type(), ") must have the means' dtype (", mean.scalar_type(), ")");
    TORCH_CHECK(entropy->dim() == 2 && entropy->size(0) == images && entropy->size(1) == pixels,
                "BalEnt's native kernel: the predictive entropy must be [B, P] = [", images, ", ", pixels,
                "], got ", entropy->sizes());
  }
  const Isa& isa = isa_named(isa_name);
  const auto f64 = mean.options().dtype(at::kDouble);
  at::Tensor finite = at::empty({images, pixels}, f64);
  at::Tensor saturated = at::empty({images, pixels}, mean.options().dtype(at::kBool));
  at::Tensor fitted = at::empty({images, pixels}, mean.options().dtype(at::kBool));
  at::Tensor scores = at::empty({with_scores ? images : 0, with_scores ? pixels : 0}, f64);
  const int64_t per_image = (pixels + block_pixels - 1) / block_pixels;
  double* finite_out = finite.data_ptr<double>();
  auto* saturated_out = reinterpret_cast<uint8_t*>(saturated.data_ptr<bool>());
  auto* fitted_out = reinterpret_cast<uint8_t*>(fitted.data_ptr<bool>());
  double* scores_out = with_scores ? scores.data_ptr<double>() : nullptr;
  // one job per block of an image; at::parallel_for splits them into one contiguous range per thread
  at::parallel_for(0, images * per_image, 1, [&](int64_t first, int64_t last) {
    for (int64_t job = first; job < last; job++) {
      const int64_t image = job / per_image, start = (job % per_image) * block_pixels;
      const int64_t n = std::min(block_pixels, pixels - start);
      const int64_t source = image * classes * pixels + start, target = image * pixels + start;
      double* job_scores = with_scores ? scores_out + target : nullptr;
      if (mean.scalar_type() == at::kFloat) {
        const float* h = with_scores ? entropy->data_ptr<float>() + target : nullptr;
        isa.term_float32(mean.data_ptr<float>() + source, var.data_ptr<float>() + source, classes, n,
                         pixels, floored, finite_out + target, saturated_out + target,
                         fitted_out + target, h, job_scores);
      } else {
        const double* h = with_scores ? entropy->data_ptr<double>() + target : nullptr;
        isa.term_float64(mean.data_ptr<double>() + source, var.data_ptr<double>() + source, classes, n,
                         pixels, floored, finite_out + target, saturated_out + target,
                         fitted_out + target, h, job_scores);
      }
    }
  });
  return {finite, saturated, fitted, scores};
}

// BalEnt's acquisition values (float64) from a posterior term's parts and H, elementwise, one pass.
at::Tensor acquisition_op(const at::Tensor& finite, const at::Tensor& saturated, const at::Tensor& entropy,
                       const std::string& isa_name) {
  check_cpu_contiguous(finite, "the finite posterior term");
  check_cpu_contiguous(saturated, "the saturated flags");
  check_statistic(entropy, "the predictive entropy");
  TORCH_CHECK(finite.scalar_type() == at::kDouble, "BalEnt's native kernel: the finite posterior term must be float64");
  TORCH_CHECK(saturated.scalar_type() == at::kBool, "BalEnt's native kernel: the saturated flags must be bool");
  TORCH_CHECK(saturated.sizes() == finite.sizes() && entropy.sizes() == finite.sizes(),
              "BalEnt's native kernel: the posterior term ", finite.sizes(), ", its flags ", saturated.sizes(),
              " and the predictive entropy ", entropy.sizes(), " must share a shape");
  const Isa& isa = isa_named(isa_name);
  at::Tensor out = at::empty(finite.sizes(), finite.options());
  const auto* flags = reinterpret_cast<const uint8_t*>(saturated.data_ptr<bool>());
  if (entropy.scalar_type() == at::kFloat)
    isa.acquisition_float32(finite.data_ptr<double>(), flags, entropy.data_ptr<float>(), finite.numel(),
                            out.data_ptr<double>());
  else
    isa.acquisition_float64(finite.data_ptr<double>(), flags, entropy.data_ptr<double>(), finite.numel(),
                            out.data_ptr<double>());
  return out;
}

void check_float64(const at::Tensor& t, const char* what) {
  check_cpu_contiguous(t, what);
  TORCH_CHECK(t.scalar_type() == at::kDouble, "BalEnt's native kernel: ", what, " must be float64, got ",
              t.scalar_type());
}

// The entropy of Beta(1 + alpha, beta) elementwise, for the tests against the 40-digit reference.
at::Tensor beta_entropy_op(const at::Tensor& alpha, const at::Tensor& beta, bool floored, const std::string& isa_name) {
  check_float64(alpha, "alpha");
  check_float64(beta, "beta");
  TORCH_CHECK(alpha.sizes() == beta.sizes(), "BalEnt's native kernel: alpha ", alpha.sizes(), " and beta ",
              beta.sizes(), " differ in shape");
  at::Tensor out = at::empty(alpha.sizes(), alpha.options());
  isa_named(isa_name).beta_entropy(alpha.data_ptr<double>(), beta.data_ptr<double>(), alpha.numel(), floored,
                                   out.data_ptr<double>());
  return out;
}

// The kernel's own logarithm elementwise, for the tests against the 40-digit reference.
at::Tensor log_positive_op(const at::Tensor& x, const std::string& isa_name) {
  check_float64(x, "x");
  at::Tensor out = at::empty(x.sizes(), x.options());
  isa_named(isa_name).log_positive(x.data_ptr<double>(), x.numel(), out.data_ptr<double>());
  return out;
}

// What this build is: the instruction sets this CPU runs, best first, and whether the blocks run
// on several threads (built with OpenMP, torch's intra-op backend).
std::tuple<std::vector<std::string>, bool> build_info() {
  std::vector<std::string> runs;
  for (const Isa& isa : kIsas)
    if (cpu_runs(isa))
      runs.emplace_back(isa.name);
#ifdef _OPENMP
  return {runs, true};
#else
  return {runs, false};
#endif
}

}  // namespace

TORCH_LIBRARY(al_seg_balent, m) {
  m.def("posterior_term(Tensor mean, Tensor var, bool floored, int block_pixels, Tensor? entropy, str isa) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  m.def("acquisition(Tensor finite, Tensor saturated, Tensor entropy, str isa) -> Tensor");
  m.def("beta_entropy(Tensor alpha, Tensor beta, bool floored, str isa) -> Tensor");
  m.def("log_positive(Tensor x, str isa) -> Tensor");
  m.def("build_info() -> (str[], bool)", &build_info);
}

TORCH_LIBRARY_IMPL(al_seg_balent, CPU, m) {
  m.impl("posterior_term", &posterior_term_op);
  m.impl("acquisition", &acquisition_op);
  m.impl("beta_entropy", &beta_entropy_op);
  m.impl("log_positive", &log_positive_op);
}
