/* BalEnt's posterior term S = sum_c min(0, p_c h_c) over a [C, P] block, and its acquisition value:
   the arithmetic of the native kernel. posterior_term.cpp includes this file once per instruction
   set, inside a namespace of its own, with LANES (doubles per vector register) set and the
   compiler's target set for that instruction set; it holds no state and no torch.

   The same arithmetic as strategies/balent/torch_kernel.py (fit, the top class's complement, the
   saturated and fitted flags) and beta_entropy.py (the entropy of Beta(1 + alpha, beta) by the
   shift-by-8 recurrences and Stirling's form, every logarithm gathered into one), in float64,
   written as short loops over chunks of pixels so that the compiler vectorises them: no branch,
   selects instead, and three changes that compiled loops allow:
     - the six reciprocals (1/y and 1/P(x) for x in a, b, s) come from ONE division of the
       product of y P(x) over the three arguments (below 1e227 for every valid fit);
     - log and exp are evaluated here (exponent split + polynomial), so that they vectorise too;
     - W's square root is replaced by half the log of W^2.
   Built with -ffp-contract=off and no fast-math, every operation is rounded as written, so every
   instruction set gives the same bits. strategies/balent/native_kernel.py passes, as -D flags,
   the constants that strategies/balent/formula.py and beta_entropy.py own: FIT_FLOOR,
   FIT_TOLERANCE, SIMPLEX_TOLERANCE, SHIFT, HALF_LOG_2PI, LOG_REF_BETA_FN_EPS, LOG_2 and the
   coefficients of the remainders' polynomials, LGAMMA_C1..6 and PSI_C1..6. */
#ifndef LANES  /* doubles per vector register: posterior_term.cpp sets it for each target */
#define LANES 2  /* SSE2 and NEON, what every x86-64 and aarch64 runs */
#endif

#define CHUNK 128
#define HALF_LOG_2PI_E (HALF_LOG_2PI + 0.5)
#define SOFTPLUS_THRESHOLD 40.0
#define LN2_HI 6.93147180369123816490e-01  /* ln 2 split: n * LN2_HI is exact for |n| < 2^20 */
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700
#define ROUND_MAGIC 6755399441055744.0      /* 1.5 * 2^52: adding it rounds to an integer */
#define INLINE inline __attribute__((always_inline))  /* one loop body, vectorised whole */

static INLINE double from_bits(uint64_t b) { double d; memcpy(&d, &b, sizeof d); return d; }
static INLINE uint64_t to_bits(double d) { uint64_t b; memcpy(&b, &d, sizeof b); return b; }

/* log x for a positive, finite, normal x (|error| within ~2 units of rounding):
   x = 2^e m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(f) = 2 f + 2 f^3 A(f^2),
   f = (m - 1) / (m + 1), |f| < 0.172. A(u) = 1/3 + u/5 + u^2/7 + ... is taken as the 7-term
   polynomial fitted to it on [0, 0.172^2] (Chebyshev interpolation of its 50-digit values,
   derived again by tests/test_strategies/test_series_fits.py): its error adds below 2e-18 to
   log m, where the series to f^19 it replaces left 8e-18. */
#define LOG_A1 0.3333333333333335
#define LOG_A2 0.19999999999949752
#define LOG_A3 0.14285714312987743
#define LOG_A4 0.1111110556739754
#define LOG_A5 0.09091444562630861
#define LOG_A6 0.07665860800278021
#define LOG_A7 0.07308224842521703
static INLINE double log_positive(double x) {
    uint64_t bits = to_bits(x);
    double e = from_bits((bits >> 52) | 0x4330000000000000ULL) - (4503599627370496.0 + 1023.0);
    double m = from_bits((bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL);
    int high = m > 1.4142135623730951;
    m = high ? 0.5 * m : m;
    e = high ? e + 1.0 : e;
    double f = (m - 1.0) / (m + 1.0);
    double u = f * f;
    double a = LOG_A1 + u * (LOG_A2 + u * (LOG_A3 + u * (LOG_A4 + u * (LOG_A5 + u * (LOG_A6 + u * LOG_A7)))));
    double log_m = 2.0 * f + 2.0 * f * u * a;
    return e * LN2_HI + (e * LN2_LO + log_m);
}

/* exp d for d in [-700, 40]: d = n ln 2 + r, |r| <= ln 2 / 2, e^r by its Taylor series to r^14. */
static INLINE double exp_bounded(double d) {
    double t = d * INV_LN2 + ROUND_MAGIC;
    double n = t - ROUND_MAGIC;
    double r = (d - n * LN2_HI) - n * LN2_LO;
    double p = 1.0 / 87178291200.0;  /* 1/14! */
    p = p * r + 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t scale = (to_bits(t) + 1023ULL) << 52;  /* 2^n: the low bits of t hold n */
    return p * from_bits(scale);
}

/* y = x + 8, P(x) = x (x+1) ... (x+7) and P'(x) (so that D(x) = P'(x) / P(x)), as in
   beta_entropy._shift_into: u = x (x + 7), P = u (u + 6) (u + 10) (u + 12). */
static INLINE void shift_terms(double x, double *p, double *dp) {
    double u = x * (x + 7.0);
    double low = u * (u + 6.0);
    double high = (u + 11.0) * (u + 11.0) - 1.0;
    double low_sum = 2.0 * u + 6.0;
    *p = high * low;
    *dp = (low_sum * high + (low_sum + 16.0) * low) * (2.0 * x + 7.0);
}

/* sum_k C<k> z^(k-1) for k = 1..6, by Horner: the polynomials of lgamma's remainder
   (C = LGAMMA_C) and psi's (C = PSI_C), beta_entropy.LGAMMA_TERMS and PSI_TERMS */
#define SERIES6(z, C) (C##1 + (z) * (C##2 + (z) * (C##3 + (z) * (C##4 + (z) * (C##5 + (z) * C##6)))))

static INLINE double lgamma_correction(double w, double z) {  /* r(y), w = 1/y, z = w^2 */
    return w * SERIES6(z, LGAMMA_C);
}

static INLINE double psi_correction(double z) {  /* t(y), z = 1/y^2 */
    return z * SERIES6(z, PSI_C);
}

/* Entropies of Beta(1 + alpha, beta) for n <= CHUNK values (s = 1 + k, k = alpha + beta, all
   positive), as in beta_entropy.beta_entropy_into; floored: log B(a, b) replaced by
   log(B(a, b) + 1e-32). In three loops over the chunk rather than one: each loop's chain of
   dependent operations (a division, a series, a logarithm) is short enough that the processor
   overlaps many iterations, where one long loop body left it waiting (~25% faster here).
   With weight (not NULL): h_out is scratch, and sum += min(0, weight h) instead. */
static INLINE void beta_entropies(const double *__restrict__ alpha, const double *__restrict__ beta,
                                  const double *__restrict__ k, int64_t n, int floored,
                                  double *__restrict__ h_out, const double *__restrict__ weight,
                                  double *__restrict__ sum) {
    double ya_[CHUNK], yb_[CHUNK], ys_[CHUNK], pa_[CHUNK], pb_[CHUNK], ps_[CHUNK];
    double dpa_[CHUNK], dpb_[CHUNK], dps_[CHUNK], ia_[CHUNK], ib_[CHUNK], is_[CHUNK];
    double w2_[CHUNK];
    /* 1. the shifts and the one division: 1/(y P(x)) for x = a, b, s */
#pragma GCC ivdep
    for (int64_t j = 0; j < n; j++) {
        double a = 1.0 + alpha[j], b = beta[j], s = 1.0 + k[j];
        double ya = a + SHIFT, yb = b + SHIFT, ys = s + SHIFT;
        double pa, pb, ps, dpa, dpb, dps;
        shift_terms(a, &pa, &dpa);
        shift_terms(b, &pb, &dpb);
        shift_terms(s, &ps, &dps);
        double qa = ya * pa, qb = yb * pb, qs = ys * ps;  /* y P(x), each below 1e76 */
        double qab = qa * qb;
        double inv = 1.0 / (qab * qs);
        ia_[j] = inv * (qb * qs); ib_[j] = inv * (qa * qs); is_[j] = inv * qab;
        ya_[j] = ya; yb_[j] = yb; ys_[j] = ys; pa_[j] = pa; pb_[j] = pb; ps_[j] = ps;
        dpa_[j] = dpa; dpb_[j] = dpb; dps_[j] = dps;
    }
    /* 2. the remainders' polynomials and every term but log W; W^2 for step 3 */
#pragma GCC ivdep
    for (int64_t j = 0; j < n; j++) {
        double ya = ya_[j], yb = yb_[j], ys = ys_[j], ps = ps_[j];
        double wa = pa_[j] * ia_[j], wb = pb_[j] * ib_[j], ws = ps * is_[j];  /* 1/y */
        double ipa = ya * ia_[j], ipb = yb * ib_[j], ips = ys * is_[j];       /* 1/P(x) */
        double za = wa * wa, zb = wb * wb, zs = ws * ws;
        double ra = lgamma_correction(wa, za), rb = lgamma_correction(wb, zb);
        double rs = lgamma_correction(ws, zs);
        double ea = psi_correction(za) + dpa_[j] * ipa;  /* t(y) + D(x) */
        double eb = psi_correction(zb) + dpb_[j] * ipb;
        double es = psi_correction(zs) + dps_[j] * ips;
        double h = (HALF_LOG_2PI_E - SHIFT) - (SHIFT + 1.0) / 2.0 * (wa + wb)
                   + (SHIFT + 2.0) / 2.0 * ws + ra + rb - rs;
        h += alpha[j] * ea + (beta[j] - 1.0) * eb - (k[j] - 1.0) * es;
        /* W = (y_a y_b / y_s)^(8 + 1/2) P(s) / (P(a) P(b) y_s), as W^2 (no square root): its
           two factors stay within 1e-80 .. 1e80 for every valid fit */
        double v = ya * yb * ws;  /* y_a y_b / y_s */
        double x = ipa * ipb * ps * ws;
        double v2 = v * v, v4 = v2 * v2, v8 = v4 * v4;
        w2_[j] = (v8 * v8 * x) * (v * x);
        if (floored) {
            /* log B from the shifted Stirling form (beta_entropy._log_beta_function_into) */
            double log_b = (ya - 0.5) * log_positive(ya * ws) + (yb - 0.5) * log_positive(yb * ws)
                           + (SHIFT - 0.5) * log_positive(ys) + (HALF_LOG_2PI - SHIFT)
                           + ra + rb - rs + log_positive(ipa * ipb * ps);
            double d = LOG_REF_BETA_FN_EPS - log_b;  /* + log(B + 1e-32) - log B = softplus(d) */
            double dc = d < -700.0 ? -700.0 : (d > SOFTPLUS_THRESHOLD ? SOFTPLUS_THRESHOLD : d);
            double softplus = log_positive(1.0 + exp_bounded(dc));
            h += d > SOFTPLUS_THRESHOLD ? d : softplus;
        }
        h_out[j] = h;
    }
    /* 3. log W */
#pragma GCC ivdep
    for (int64_t j = 0; j < n; j++) {
        double h = h_out[j] + 0.5 * log_positive(w2_[j]);
        if (weight) {
            double contribution = weight[j] * h;
            sum[j] += contribution < 0.0 ? contribution : 0.0;
        } else {
            h_out[j] = h;
        }
    }
}

/* One class over a chunk of n <= CHUNK pixels: adds its contribution to sum and sets the flags.
   Where this class is the pixel's top class (top[j] == cd), its mean and complement are
   top_p[j] and top_q[j] (see top_class), and top_dominant[j] says whether top_p[j] > 1/2. */
static INLINE void class_row(const double *__restrict__ pm, const double *__restrict__ vm, int64_t n,
                             double cd, const double *__restrict__ top, const double *__restrict__ top_p,
                             const double *__restrict__ top_q, const double *__restrict__ top_dominant,
                             int floored, double *__restrict__ sum, double *__restrict__ sat,
                             double *__restrict__ fit) {
    double alpha[CHUNK], beta[CHUNK], k[CHUNK], p_fit[CHUNK], h[CHUNK];
#pragma GCC ivdep
    for (int64_t j = 0; j < n; j++) {
        double p = pm[j], v = vm[j];
        int is_top = top[j] == cd;
        double q = is_top ? top_q[j] : 1.0 - p;
        p = is_top ? top_p[j] : p;
        int candidate = (v < FIT_FLOOR) & is_top & (top_dominant[j] != 0.0);
        p = p < FIT_FLOOR ? FIT_FLOOR : p;  /* NaN stays NaN */
        v = v < FIT_FLOOR ? FIT_FLOOR : v;
        double kj = p * q / v - 1.0;
        int valid = kj > FIT_TOLERANCE;
        /* invalid fits: a stand-in Beta(2, 1), masked out below */
        k[j] = valid ? kj : 2.0;
        alpha[j] = valid ? p * kj : 1.0;
        beta[j] = valid ? q * kj : 1.0;
        p_fit[j] = valid ? p : 0.0;  /* an invalid fit contributes 0 */
        fit[j] = valid ? 1.0 : fit[j];
        sat[j] = (candidate & !valid) ? 1.0 : sat[j];
    }
    beta_entropies(alpha, beta, k, n, floored, h, p_fit, sum);
}

#define TOP_ARGUMENTS const double *top, const double *top_p, const double *top_q, \
                      const double *top_dominant
static void class_row_exact(const double *pm, const double *vm, int64_t n, double cd,
                            TOP_ARGUMENTS, double *sum, double *sat, double *fit) {
    if (n == CHUNK)  /* a full chunk: a constant trip count, no remainder loop */
        class_row(pm, vm, CHUNK, cd, top, top_p, top_q, top_dominant, 0, sum, sat, fit);
    else
        class_row(pm, vm, n, cd, top, top_p, top_q, top_dominant, 0, sum, sat, fit);
}

static void class_row_floored(const double *pm, const double *vm, int64_t n, double cd,
                              TOP_ARGUMENTS, double *sum, double *sat, double *fit) {
    if (n == CHUNK)
        class_row(pm, vm, CHUNK, cd, top, top_p, top_q, top_dominant, 1, sum, sat, fit);
    else
        class_row(pm, vm, n, cd, top, top_p, top_q, top_dominant, 1, sum, sat, fit);
}

/* The top class of each pixel, its mean and its complement, TOP_PIXELS pixels at a time held in
   vector registers (GCC/clang vector types as wide as the target's) across the class loop (the
   same code on arrays, reloaded and stored for every class, took ~10% of the kernel). Per pixel:
   the first largest mean; the sum of all the means, and of all but the largest, "others" (a
   class that loses the lead moves its mean into it: no cancellation). Where the means sum to 1
   within SIMPLEX_TOLERANCE the top class's complement is "others" and its mean 1 - others, so
   that they sum to 1 exactly; elsewhere its mean and 1 - mean. top: the index (as a double), -1
   where a mean is NaN (no top class); dominant: 1 where the top class's mean is above 1/2.
   LANES: 8 for AVX-512, 4 for AVX2, 2 for SSE2 and NEON. */
#define TOP_VECTORS 4  /* vectors of pixels in flight together: their dependency chains overlap */
#define TOP_PIXELS (LANES * TOP_VECTORS)
typedef double vd __attribute__((vector_size(8 * LANES)));
typedef int64_t vi __attribute__((vector_size(8 * LANES)));

static INLINE vd select_v(vi mask, vd yes, vd no) {
    return (vd)(((vi)yes & mask) | ((vi)no & ~mask));
}

static INLINE vd splat_v(double x) {
    vd r;
    for (int i = 0; i < LANES; i++)
        r[i] = x;
    return r;
}

#define DEFINE_TOP_CLASS(T)                                                                     \
static INLINE vd load_v_##T(const T *p, int64_t n) {  /* n values (1 to LANES), then zeros */   \
    T values[LANES] = {0};                                                                      \
    memcpy(values, p, (size_t)(n < LANES ? n : LANES) * sizeof(T));                             \
    vd r;                                                                                       \
    for (int i = 0; i < LANES; i++)                                                             \
        r[i] = (double)values[i];                                                               \
    return r;                                                                                   \
}                                                                                               \
                                                                                                \
static INLINE void top_group_##T(const T *mean, int64_t n_classes, int64_t stride, int64_t n,   \
                                 double *top_out, double *p_out, double *q_out,                 \
                                 double *dominant_out) {                                        \
    vd best[TOP_VECTORS], top[TOP_VECTORS], total[TOP_VECTORS], others[TOP_VECTORS];           \
    for (int u = 0; u < TOP_VECTORS; u++) {                                                     \
        best[u] = splat_v(-__builtin_inf()); top[u] = splat_v(-1.0);                            \
        total[u] = splat_v(0.0); others[u] = splat_v(0.0);                                      \
    }                                                                                           \
    for (int64_t c = 0; c < n_classes; c++) {                                                   \
        for (int u = 0; u < TOP_VECTORS; u++) {                                                 \
            const T *pc = mean + c * stride + LANES * u;                                        \
            vd p = LANES * u < n ? load_v_##T(pc, n - LANES * u) : splat_v(0.0);                \
            vi larger = p > best[u];                                                            \
            others[u] += select_v(larger, select_v(top[u] < 0.0, splat_v(0.0), best[u]), p);    \
            best[u] = select_v(larger, p, best[u]);                                             \
            top[u] = select_v(larger, splat_v((double)c), top[u]);                              \
            total[u] += p;                                                                      \
        }                                                                                       \
    }                                                                                           \
    for (int u = 0; u < TOP_VECTORS && LANES * u < n; u++) {                                    \
        vd off = total[u] - 1.0;                                                                \
        vi on_simplex = select_v(off < 0.0, -off, off) <= SIMPLEX_TOLERANCE;                    \
        vd t = select_v(total[u] == total[u], top[u], splat_v(-1.0));                           \
        vd p = select_v(on_simplex, 1.0 - others[u], best[u]);                                  \
        vd q = select_v(on_simplex, others[u], 1.0 - best[u]);                                  \
        vd dominant = select_v(p > 0.5, splat_v(1.0), splat_v(0.0));                            \
        int64_t lanes = n - LANES * u < LANES ? n - LANES * u : LANES;                          \
        size_t bytes = (size_t)lanes * sizeof(double);                                          \
        memcpy(top_out + LANES * u, &t, bytes);                                                 \
        memcpy(p_out + LANES * u, &p, bytes);                                                   \
        memcpy(q_out + LANES * u, &q, bytes);                                                   \
        memcpy(dominant_out + LANES * u, &dominant, bytes);                                     \
    }                                                                                           \
}                                                                                               \
                                                                                                \
static void top_class_##T(const T *mean, int64_t n_classes, int64_t stride, int64_t n,          \
                          double *top, double *p, double *q, double *dominant) {                \
    int64_t s = 0;                                                                              \
    for (; s + TOP_PIXELS <= n; s += TOP_PIXELS)  /* a constant width: plain loads */           \
        top_group_##T(mean + s, n_classes, stride, TOP_PIXELS, top + s, p + s, q + s, dominant + s); \
    if (s < n)                                                                                  \
        top_group_##T(mean + s, n_classes, stride, n - s, top + s, p + s, q + s, dominant + s);  \
}

DEFINE_TOP_CLASS(float)
DEFINE_TOP_CLASS(double)

/* BalEnt's acquisition value from the posterior term's parts and the predictive entropy H, as
   strategies.balent.formula defines it: BalEnt = (S + H) / (H + log 2), S = -inf where saturated;
   1 / BalEnt where positive, BalEnt where negative, -inf where 0 or not finite. */
static INLINE double acquisition(double finite, int saturated, double h) {
    double s = saturated ? -__builtin_inf() : finite;
    double b = (s + h) / (h + LOG_2);
    int ranked = ((b - b) == 0.0) & (b != 0.0);  /* finite and not 0 */
    double value = b > 0.0 ? 1.0 / b : b;
    return ranked ? value : -__builtin_inf();
}

/* One [C, P] block: mean and var at element c * class_stride + j; out: finite S (float64),
   saturated and fitted (0/1 bytes), each [P]; with entropy (H, [P]; else NULL), also BalEnt's
   acquisition values into scores ([P]), in the same pass. Each chunk of pixels is read twice
   (the top class and its complement: top_class; the fits), converted to float64 on the way. */
#define DEFINE_POSTERIOR_TERM(NAME, T)                                                          \
static void NAME(const T *mean, const T *var, int64_t n_classes, int64_t n_pixels,                     \
          int64_t class_stride, int floored, double *finite, uint8_t *saturated,                \
          uint8_t *fitted, const T *entropy, double *scores) {                                  \
    double top[CHUNK], top_p[CHUNK], top_q[CHUNK], top_dominant[CHUNK];                        \
    double sum[CHUNK], sat[CHUNK], fit[CHUNK], pm[CHUNK], vm[CHUNK];                            \
    for (int64_t start = 0; start < n_pixels; start += CHUNK) {                                 \
        int64_t n = n_pixels - start < CHUNK ? n_pixels - start : CHUNK;                        \
        for (int64_t j = 0; j < n; j++) {                                                       \
            sum[j] = 0.0; sat[j] = 0.0; fit[j] = 0.0;                                           \
        }                                                                                       \
        top_class_##T(mean + start, n_classes, class_stride, n, top, top_p, top_q, top_dominant); \
        for (int64_t c = 0; c < n_classes; c++) {                                               \
            const T *pc = mean + c * class_stride + start;                                      \
            const T *vc = var + c * class_stride + start;                                       \
            for (int64_t j = 0; j < n; j++) {                                                   \
                pm[j] = (double)pc[j];                                                          \
                vm[j] = (double)vc[j];                                                          \
            }                                                                                   \
            if (floored)                                                                        \
                class_row_floored(pm, vm, n, (double)c, top, top_p, top_q, top_dominant, sum,   \
                                  sat, fit);                                                    \
            else                                                                                \
                class_row_exact(pm, vm, n, (double)c, top, top_p, top_q, top_dominant, sum, sat, \
                                fit);                                                           \
        }                                                                                       \
        for (int64_t j = 0; j < n; j++) {                                                       \
            finite[start + j] = sum[j];                                                         \
            saturated[start + j] = sat[j] != 0.0;                                               \
            fitted[start + j] = fit[j] != 0.0;                                                  \
        }                                                                                       \
        if (entropy)                                                                            \
            for (int64_t j = 0; j < n; j++)                                                     \
                scores[start + j] = acquisition(sum[j], sat[j] != 0.0,                          \
                                                (double)entropy[start + j]);                    \
    }                                                                                           \
}

DEFINE_POSTERIOR_TERM(posterior_term_float32, float)
DEFINE_POSTERIOR_TERM(posterior_term_float64, double)

/* The entropy of Beta(1 + alpha, beta) elementwise (k = alpha + beta): the kernel above on its
   own, for the tests against the 40-digit reference. */
void beta_entropy_float64(const double *alpha, const double *beta, int64_t n, int floored,
                          double *out) {
    for (int64_t start = 0; start < n; start += CHUNK) {
        int64_t m = n - start < CHUNK ? n - start : CHUNK;
        double k[CHUNK];
        for (int64_t j = 0; j < m; j++)
            k[j] = alpha[start + j] + beta[start + j];
        beta_entropies(alpha + start, beta + start, k, m, floored, out + start, NULL, NULL);
    }
}

/* log_positive elementwise, for the tests against the 40-digit reference. */
void log_positive_float64(const double *x, int64_t n, double *out) {
    for (int64_t j = 0; j < n; j++)
        out[j] = log_positive(x[j]);
}

#define DEFINE_ACQUISITION(NAME, T)                                                             \
void NAME(const double *finite, const uint8_t *saturated, const T *entropy, int64_t n,           \
          double *out) {                                                                        \
    for (int64_t j = 0; j < n; j++)                                                             \
        out[j] = acquisition(finite[j], saturated[j], (double)entropy[j]);                      \
}

DEFINE_ACQUISITION(balent_acquisition_float32, float)
DEFINE_ACQUISITION(balent_acquisition_float64, double)
