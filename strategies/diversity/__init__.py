"""The math of the diversity strategies, pure torch, random only through a generator argument:

- ``candidates``: a seeded subsample of one image's selectable pixels, in a seeded order;
- ``distances``: squared Euclidean distances from points to a set of centres, in chunks;
- ``growing_rows``: the centres a cycle adds image by image, kept as one growing tensor;
- ``k_center``: greedy k-centre (CoreSet);
- ``kmeans_pp``: k-means++ seeding (BADGE);
- ``gradient_embedding``: BADGE's gradient embeddings in factorised form, O(n (C + d)) memory.
"""
