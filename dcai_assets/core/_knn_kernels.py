"""The numba kernels of :mod:`dcai_assets.core.knn_shapley` and their constants.

A module of their own so that importing :mod:`dcai_assets` (every Dagster run worker does) does
not import numba and llvmlite: :mod:`dcai_assets.core.knn_shapley` imports this module only when
a valuation runs.
"""

from __future__ import annotations

import numba
import numpy as np

from dcai_assets.core.intrinsics import (
    DOT_COLUMNS,
    DOT_ROWS,
    LANES,
    distance_keys_block,
    dot_block,
    prefetch,
)

_SIGN = np.uint64(0x8000000000000000)
_ONE = np.uint64(1)
_TILE = 512  # training rows per distance tile: X's tile stays in cache across a batch
_DIGIT_BITS = 11  # at most 2048 buckets per radix pass
_EXTRA_BITS = 5  # radix-sort log2(N) + 5 bits: about N/32 pairs left for insertion sort to order
_BLOCK = 64  # validation rows per block (each block sums into its own N-long buffer)
_MIN_BLOCKS = 8  # small holdouts get smaller blocks, so that every core has some
_MSD_FROM = 1 << 18  # from this N on, equal-size buckets sorted in cache (see _bucketed_values)
_AHEAD = 32  # ranks ahead that the additions prefetch
_SCATTER_AHEAD = 8  # rows ahead whose radix-pass destination is prefetched (see _radix_values)
_SMALL = 32  # buckets up to this size are sorted by insertion alone
_BUCKET_SIZE = 1 << 10  # the bucketed path aims at about 2^10 keys (8 KB, in L1) per bucket
_CELL_BITS = 13  # and counts 2^13 cells of the top key bits to merge into such buckets
_PREFETCH_FROM = 1 << 17  # from this N on (values beyond L2), additions prefetch their lines
_BATCH_BYTES = 1 << 28  # distance keys per thread, at most, for the default batch above _MSD_FROM
_LOW_BITS = 16  # up to this many key bits dropped by packing are kept aside (uint16 per row)


@numba.njit(cache=True)
def _bit_length(x: np.uint64) -> int:
    """Number of bits needed to write ``x`` (0 for 0)."""
    bits = 0
    while x != 0:
        x >>= _ONE
        bits += 1
    return bits


@numba.njit(cache=True, fastmath={"contract"})
def _distance_tile(
    V: np.ndarray, first: int, rows: int, XT: np.ndarray, x_sq: np.ndarray, lo: int, hi: int, out: np.ndarray
) -> None:
    """``out[r, :hi - lo]`` = squared distances of row ``first + r`` of V (r < rows <= DOT_ROWS)
    to the training rows lo..hi-1, as |v|^2 + |x|^2 - 2 v.x, the dot product a chain of fused
    multiply-adds feature by feature: :func:`dot_block` in registers for whole blocks of columns,
    the same chain in scalar code for the last few. The kernel and :func:`squared_distances` both
    use this, so their numbers are the same bit for bit."""
    w = hi - lo
    f = XT.shape[0]
    whole = w - w % DOT_COLUMNS
    for c in range(0, whole, DOT_COLUMNS):
        dot_block(V, first, rows, XT, lo + c, out, c)
    for r in range(rows):
        a = out[r, :w]
        q = first + r
        for i in range(whole, w):
            total = 0.0
            for j in range(f):
                total = total + V[q, j] * XT[j, lo + i]
            a[i] = total
    xs = x_sq[lo:hi]
    for r in range(rows):
        v_sq = _row_sq(V, first + r)
        a = out[r, :w]
        for i in range(w):
            a[i] = v_sq + xs[i] - 2.0 * a[i]


@numba.njit(parallel=True, cache=True)
def _transposed(X: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(X - shift).T in C order, allocated by numba and filled by all threads, tile by tile
    (faster than numpy's one-thread copy of the strided view; and numpy would back the array with
    transparent huge pages, which made valuations less predictable). Figures: benchmarks/RESULTS.md,
    "KNN-Shapley kernel design notes"."""
    n, f = X.shape
    out = np.empty((f, n))
    for t in numba.prange((n + _TILE - 1) // _TILE):
        for i in range(t * _TILE, min(n, (t + 1) * _TILE)):
            for j in range(f):
                out[j, i] = X[i, j] - shift[j]
    return out


@numba.njit(parallel=True, cache=True)
def _column_squares(XT: np.ndarray) -> np.ndarray:
    """|x|^2 of every column of XT, summed feature by feature as :func:`_row_sq` sums a row."""
    f, n = XT.shape
    out = np.zeros(n)
    for t in numba.prange((n + _TILE - 1) // _TILE):
        lo, hi = t * _TILE, min(n, (t + 1) * _TILE)
        for j in range(f):
            for i in range(lo, hi):
                out[i] += XT[j, i] * XT[j, i]
    return out


@numba.njit(cache=True)
def _row_sq(V: np.ndarray, q: int) -> float:
    """|V[q]|^2, summed feature by feature."""
    total = 0.0
    for j in range(V.shape[1]):
        total += V[q, j] * V[q, j]
    return total


@numba.njit(parallel=True, cache=True)
def _row_squares(X: np.ndarray) -> np.ndarray:
    """|x|^2 of every row of X, as the kernel sums them."""
    out = np.empty(X.shape[0])
    for i in numba.prange(X.shape[0]):
        out[i] = _row_sq(X, i)
    return out


@numba.njit(cache=True)
def squared_distances(V: np.ndarray, XT: np.ndarray, x_sq: np.ndarray, out: np.ndarray) -> None:
    """Squared Euclidean distances of the rows of V to the columns of XT: |v|^2 + |x|^2 - 2 v.x.
    The kernel computes exactly these numbers too (``x_sq`` as :func:`_row_squares` sums it)."""
    n = XT.shape[1]
    tile = np.empty((DOT_ROWS, _TILE))
    for lo in range(0, n, _TILE):
        hi = min(n, lo + _TILE)
        for first in range(0, V.shape[0], DOT_ROWS):
            rows = min(DOT_ROWS, V.shape[0] - first)
            _distance_tile(V, first, rows, XT, x_sq, lo, hi, tile)
            for r in range(rows):
                out[first + r, lo:hi] = tile[r, : hi - lo]


@numba.njit(cache=True)
def _batch_keys(
    V: np.ndarray, start: int, XT: np.ndarray, x_sq: np.ndarray, keys: np.ndarray, bounds: np.ndarray
) -> None:
    """Distances of validation rows start.. (one per row of ``keys``) to every training row, as
    sortable keys (unsigned order = float order), tile by tile so each tile of X is read once per
    batch; ``bounds[q]`` gets the smallest and largest key of row q. Whole blocks of columns are
    finished in registers (:func:`distance_keys_block`), the last few through
    :func:`_distance_tile`: the same numbers as :func:`squared_distances`."""
    n = XT.shape[1]
    rows = keys.shape[0]
    tile = np.empty((DOT_ROWS, _TILE))
    bits = tile.view(np.uint64)
    v_sq = np.empty(rows)
    lanes = np.empty((rows, 2, LANES), np.uint64)
    for q in range(rows):
        v_sq[q] = _row_sq(V, start + q)
        lanes[q, 0, :] = np.uint64(0xFFFFFFFFFFFFFFFF)
        lanes[q, 1, :] = np.uint64(0)
    whole = n - n % DOT_COLUMNS
    streaming = np.int64(n > _MSD_FROM)  # rows beyond the caches: stored around them
    for lo in range(0, n, _TILE):
        hi = min(n, lo + _TILE)
        for first in range(0, rows, DOT_ROWS):
            group = min(DOT_ROWS, rows - first)
            for c in range(lo, min(hi, whole), DOT_COLUMNS):
                distance_keys_block(
                    V, start + first, group, XT, c, x_sq, v_sq[first:], keys[first:], lanes[first:], streaming
                )  # fmt: skip
            if hi > whole:  # the last few columns, into the lanes' first column
                tail = max(lo, whole)
                _distance_tile(V, start + first, group, XT, x_sq, tail, hi, tile)
                for r in range(group):
                    source = bits[r, : hi - tail]
                    target = keys[first + r, tail:hi]
                    smallest, largest = lanes[first + r, 0, 0], lanes[first + r, 1, 0]
                    for i in range(hi - tail):
                        u = source[i]
                        key = u ^ ((np.uint64(0) - (u >> np.uint64(63))) | _SIGN)  # negative: flip all
                        target[i] = key
                        smallest = min(smallest, key)
                        largest = max(largest, key)
                    lanes[first + r, 0, 0], lanes[first + r, 1, 0] = smallest, largest
    for q in range(rows):
        bounds[q, 0] = lanes[q, 0].min()
        bounds[q, 1] = lanes[q, 1].max()


@numba.njit(cache=True, inline="always")
def _packed(
    keys: np.ndarray, i: int, smallest: np.uint64, u_drop: np.uint64, u_shift: np.uint64
) -> np.uint64:
    """Row ``i``'s sort item but for its label bit: the leading bits of (key - smallest), then
    the row index (see :func:`_row_values`)."""
    return (((keys[i] - smallest) >> u_drop) << u_shift) | (np.uint64(i) << _ONE)


@numba.njit(cache=True)
def _insertion_sort(a: np.ndarray, budget: int, shift: np.uint64) -> int:
    """Sort ``a`` in place; linear when ``a`` is nearly sorted, as after the radix passes. Past
    ``budget`` moves (keys crowded in few radix buckets, e.g. by a far outlier) it hands the rest
    to numpy's sort, so the worst case stays O(N log N). Returns how many neighbours it saw equal
    above bit ``shift`` (each pair checked as it became adjacent; nonzero if the sorted ``a`` has
    such a pair), so the caller need not scan for truncated ties."""
    if a.shape[0] == 0:
        return 0
    moves = 0
    ties = 0
    largest = a[0]  # of a[:i], in a register: most items are already in place, one compare each
    for i in range(1, a.shape[0]):
        item = a[i]
        if item >= largest:
            ties += np.int64(((item ^ largest) >> shift) == 0)
            largest = item
            continue
        j = i - 1
        while j >= 0 and a[j] > item:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = item
        ties += np.int64(((item ^ a[j + 2]) >> shift) == 0)
        if j >= 0:
            ties += np.int64(((item ^ a[j]) >> shift) == 0)
        moves += i - 1 - j
        if moves > budget:
            a[:] = np.sort(a)
            return 1
    return ties


@numba.njit(cache=True)
def _fix_truncated_ties(a: np.ndarray, keys: np.ndarray, shift: np.uint64, mask: np.uint64) -> None:
    """Runs of ``a`` equal in the packed (truncated) key bits: put them in (full key, index)
    order, reading by index the full keys or just the bits that packing dropped. Rare: the
    packed key keeps 40+ leading bits."""
    n = a.shape[0]
    start = 0
    while start < n - 1:
        end = start + 1
        head = a[start] >> shift
        while end < n and (a[end] >> shift) == head:
            end += 1
        if end - start > 1:  # packed order is index order, so a stable sort on the full key
            full = np.empty(end - start, np.uint64)
            for j in range(start, end):
                full[j - start] = keys[(a[j] >> _ONE) & mask]
            ranked = np.argsort(full, kind="mergesort")
            run = a[start:end].copy()
            for j in range(end - start):
                a[start + j] = run[ranked[j]]
        start = end


@numba.njit(cache=True)
def _sort_segment(
    src: np.ndarray, one: np.ndarray, two: np.ndarray, top: int, counts: np.ndarray, tie_shift: np.uint64
) -> tuple[np.ndarray, int]:
    """Sort distinct uint64 values that are equal above bit ``top`` into scratch (``one`` or
    ``two``, each at least as long; returned): LSD radix passes over the about log2(len) bits
    below ``top``, then insertion sort (whose tie count it returns too). ``src`` is only read, so
    its cache lines stay clean."""
    s = src.shape[0]
    need = min(top, _bit_length(np.uint64(s)) + 1) if s > _SMALL else 0
    if need <= 0:
        out = one[:s]
        out[:] = src
        return out, _insertion_sort(out, 16 * s, tie_shift)
    passes = (need + _DIGIT_BITS - 1) // _DIGIT_BITS
    width = (need + passes - 1) // passes
    low = max(0, top - passes * width)
    mask = np.uint64((1 << width) - 1)
    source = src
    for p in range(passes):
        dst = one[:s] if p % 2 == 0 else two[:s]
        shift = np.uint64(low + p * width)
        counts[: 1 << width] = 0
        for i in range(s):
            counts[(source[i] >> shift) & mask] += 1
        total = 0
        for d in range(1 << width):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(s):
            value = source[i]
            d = (value >> shift) & mask
            dst[counts[d]] = value
            counts[d] += 1
        source = dst
    return source, _insertion_sort(source, 16 * s, tie_shift)


@numba.njit(cache=True)
def _recursion(
    sorted_: np.ndarray,
    base: int,
    n: int,
    lo: int,
    hi: int,
    weight: float,
    state: np.ndarray,
    index_mask: np.uint64,
    values: np.ndarray,
    k: int,
) -> None:
    """The recursion (Jia et al. 2019, Theorem 1) over ranks hi-1 down to lo of ``sorted_`` (rank
    r at ``sorted_[r - base]``), the farthest first, carrying (value, match) of the rank above in
    ``state``: value_r = value_{r+1} + (match_r - match_{r+1}) * min(K, i) / (K i), i = r + 1,
    that is (match_r - match_{r+1}) / max(K, i): divided, not read from an N-long table of
    weights, one stream less through the cache (figures: benchmarks/RESULTS.md). Each
    value is added at once to ``values`` at the row's index. Four ranks per step: their differences are
    summed among themselves first, so the chain of dependent additions advances four ranks per
    addition. From ``_PREFETCH_FROM`` rows on, the row ``_AHEAD`` ranks on is prefetched, so the
    random additions overlap their trips to memory instead of waiting for each cache line."""
    s, match_next = state[0], state[1]
    t = hi - 1
    ahead = _AHEAD if n >= _PREFETCH_FROM else 0
    while t >= lo + 3:
        if ahead and t - ahead - 3 >= lo:
            for u in range(4):
                prefetch(values, (sorted_[t - ahead - u - base] >> _ONE) & index_mask)
        r = t - base
        p0, p1, p2, p3 = sorted_[r], sorted_[r - 1], sorted_[r - 2], sorted_[r - 3]
        c0, c1, c2, c3 = float(p0 & _ONE), float(p1 & _ONE), float(p2 & _ONE), float(p3 & _ONE)
        e0 = (c0 - match_next) / max(k, t + 1)
        e1 = e0 + (c1 - c0) / max(k, t)
        e2 = e1 + (c2 - c1) / max(k, t - 1)
        e3 = e2 + (c3 - c2) / max(k, t - 2)
        values[(p0 >> _ONE) & index_mask] += weight * (s + e0)
        values[(p1 >> _ONE) & index_mask] += weight * (s + e1)
        values[(p2 >> _ONE) & index_mask] += weight * (s + e2)
        values[(p3 >> _ONE) & index_mask] += weight * (s + e3)
        s += e3
        match_next = c3
        t -= 4
    while t >= lo:
        p0 = sorted_[t - base]
        c0 = float(p0 & _ONE)
        s += (c0 - match_next) / max(k, t + 1)
        values[(p0 >> _ONE) & index_mask] += weight * s
        match_next = c0
        t -= 1
    state[0], state[1] = s, match_next


@numba.njit(cache=True)
def _equal_buckets(
    hist: np.ndarray, n_cells: int, low: int, start: np.ndarray, tops: np.ndarray, cell_map: np.ndarray
) -> int:
    """Merge the cells counted in ``hist`` (in key order) into buckets of at most
    ``_BUCKET_SIZE`` keys where a cell allows it, whatever the shape of the distances: each
    bucket an aligned run of 2^j cells, so its keys agree above bit ``low + j`` (``tops``) and it
    sorts on the bits below alone. Fills ``cell_map`` (cell -> bucket) and ``start`` (first rank
    of each bucket, then N); returns the number of buckets."""
    total = 0
    for c in range(n_cells):  # hist[c] becomes the number of keys in the cells before c
        h = hist[c]
        hist[c] = total
        total += h
    hist[n_cells] = total
    buckets = 0
    c = 0
    while c < n_cells:
        j = 0
        while True:
            size = 2 << j
            if c % size != 0 or c + size > n_cells or hist[c + size] - hist[c] > _BUCKET_SIZE:
                break
            j += 1
        start[buckets] = hist[c]
        tops[buckets] = low + j
        for cell in range(c, c + (1 << j)):
            cell_map[cell] = buckets
        buckets += 1
        c += 1 << j
    start[buckets] = total
    return buckets


@numba.njit(cache=True)
def _bucketed_values(
    keys: np.ndarray,
    smallest: np.uint64,
    y: np.ndarray,
    label: int,
    k: int,
    weight: float,
    u_drop: np.uint64,
    u_shift: np.uint64,
    total_bits: int,
    index_mask: np.uint64,
    sorted_: np.ndarray,
    buf: np.ndarray,
    buf2: np.ndarray,
    head: np.ndarray,
    counts: np.ndarray,
    cells: np.ndarray,
    cell_map: np.ndarray,
    values: np.ndarray,
) -> None:
    """Above ``_MSD_FROM`` rows (memory bound): a histogram of the top bits (2^13 cells), cells
    merged into buckets of about 2^10 keys (:func:`_equal_buckets`, so skewed distances do not
    crowd a few buckets), one pass scattering the packed keys into their buckets, then each
    bucket, last first, sorted in L1 scratch (``sorted_`` is only read back) and run through the
    recursion at once."""
    n = keys.shape[0]
    cell_bits = min(_CELL_BITS, total_bits - int(u_shift))  # cells lie above the index bits
    low = total_bits - cell_bits
    u_low = np.uint64(low)
    n_cells = 1 << cell_bits
    hist, start, tops, position = cells[0], cells[1], cells[2], cells[3]
    hist[: n_cells + 1] = 0
    for i in range(n):
        hist[_packed(keys, i, smallest, u_drop, u_shift) >> u_low] += 1
    buckets = _equal_buckets(hist, n_cells, low, start, tops, cell_map)
    position[:buckets] = start[:buckets]
    for i in range(n):
        packed = _packed(keys, i, smallest, u_drop, u_shift) | np.uint64(y[i] == label)
        b = cell_map[packed >> u_low]
        sorted_[position[b]] = packed
        position[b] += 1
    state = np.zeros(2)
    first = min(k + 1, n)
    for b in range(buckets - 1, -1, -1):
        lo, hi = start[b], start[b + 1]
        if hi == lo:
            continue
        ranked, ties = _sort_segment(sorted_[lo:hi], buf2, buf, tops[b], counts[1], u_shift)
        if u_drop > 0 and ties:  # equal in the packed bits: order them by the full keys
            _fix_truncated_ties(ranked, keys, u_shift, index_mask)
        for r in range(lo, min(hi, first)):
            head[r] = ranked[r - lo]
        _recursion(ranked, lo, n, lo, hi, weight, state, index_mask, values, k)


@numba.njit(cache=True)
def _radix_values(
    keys: np.ndarray,
    smallest: np.uint64,
    y: np.ndarray,
    label: int,
    k: int,
    weight: float,
    u_drop: np.uint64,
    u_shift: np.uint64,
    total_bits: int,
    index_mask: np.uint64,
    sorted_: np.ndarray,
    buf: np.ndarray,
    dropped: np.ndarray,
    head: np.ndarray,
    counts: np.ndarray,
    values: np.ndarray,
) -> None:
    """Up to ``_MSD_FROM`` rows (all in cache): LSD radix passes over the top log2(N) + 5 bits of
    the packed keys, then insertion sort, then the recursion over all ranks. Each pass prefetches
    the line that the row ``_SCATTER_AHEAD`` on will be written to: 2^11 buckets' write streams
    do not fit L1. The bucketed path does not: with its keys coming from L3, the same prefetch
    was slower (figures: benchmarks/RESULTS.md)."""
    n = keys.shape[0]
    need = min(total_bits - 1, _bit_length(np.uint64(n)) + _EXTRA_BITS)
    passes = (need + _DIGIT_BITS - 1) // _DIGIT_BITS
    width = (need + passes - 1) // passes
    low = max(1, total_bits - passes * width)
    mask = np.uint64((1 << width) - 1)
    counts[:passes, : 1 << width] = 0
    u_low, u_low1 = np.uint64(low), np.uint64(low + width)
    counts0, counts1 = counts[0], counts[1]
    # The keys are packed in place (the row is not needed after), in a loop of their own that
    # vectorises; a second loop counts the digits of every pass (together was slower).
    # What packing drops is kept aside for ties, by row index: the dropped bits when they fit
    # uint16, else the whole keys in ``sorted_`` (a far outlier or an exact duplicate widens the
    # range). Then every pass is the same scatter, between the row and ``buf``.
    keep_full = u_drop > np.uint64(_LOW_BITS)
    if keep_full:
        sorted_[:n] = keys
    low_mask = (_ONE << u_drop) - _ONE
    for i in range(n):
        dropped[i] = (keys[i] - smallest) & low_mask  # unused if keep_full
        keys[i] = _packed(keys, i, smallest, u_drop, u_shift) | np.uint64(y[i] == label)
    if passes == 2:  # 64 <= N < 2^17, the usual case: without the generic inner loop
        for i in range(n):
            counts0[(keys[i] >> u_low) & mask] += 1
            counts1[(keys[i] >> u_low1) & mask] += 1
    else:
        for i in range(n):
            for d in range(passes):
                counts[d, (keys[i] >> np.uint64(low + d * width)) & mask] += 1
    for d in range(passes):
        total = 0
        for b in range(1 << width):
            c = counts[d, b]
            counts[d, b] = total
            total += c
    src, dst = keys, buf[:n]
    for d in range(passes):
        position = counts[d]
        digit_shift = np.uint64(low + d * width)
        for i in range(n):
            prefetch(dst, position[(src[min(i + _SCATTER_AHEAD, n - 1)] >> digit_shift) & mask])
            packed = src[i]
            b = (packed >> digit_shift) & mask
            dst[position[b]] = packed
            position[b] += 1
        src, dst = dst, src
    ranked = src
    ties = _insertion_sort(ranked, 16 * n, u_shift)
    if u_drop > 0 and ties:  # equal in the packed bits: order them by what packing dropped
        if keep_full:
            _fix_truncated_ties(ranked, sorted_, u_shift, index_mask)
        else:
            _fix_truncated_ties(ranked, dropped, u_shift, index_mask)
    first = min(k + 1, n)
    head[:first] = ranked[:first]
    _recursion(ranked, 0, n, 0, n, weight, np.zeros(2), index_mask, values, k)


@numba.njit(cache=True)
def _row_values(
    keys: np.ndarray,
    smallest: np.uint64,
    largest: np.uint64,
    y: np.ndarray,
    label: int,
    k: int,
    weight: float,
    sorted_: np.ndarray,
    buf: np.ndarray,
    buf2: np.ndarray,
    dropped: np.ndarray,
    head: np.ndarray,
    counts: np.ndarray,
    cells: np.ndarray,
    cell_map: np.ndarray,
    values: np.ndarray,
    loo_index: np.ndarray,
    loo_value: np.ndarray,
) -> None:
    """Add ``weight`` x the exact Shapley values of every training row for one validation row to
    ``values``, given its distance keys; its leave-one-out values, nonzero for the K nearest
    rows only, go to ``loo_index`` and ``loo_value`` (K each).

    Each training row becomes one uint64: leading bits of (key - smallest), then its index, then
    whether its label matches; sorting these sorts by (distance, index) and carries the label
    along, so the recursion reads memory in order but for the values it adds to. Sorted by
    :func:`_radix_values` in cache, by :func:`_bucketed_values` above ``_MSD_FROM`` rows.
    ``head`` keeps the K + 1 nearest for leave-one-out."""
    n = keys.shape[0]
    index_bits = max(1, _bit_length(np.uint64(n - 1)))
    index_mask = np.uint64((1 << index_bits) - 1)
    shift = index_bits + 1
    range_bits = _bit_length(largest - smallest)
    drop = max(0, range_bits - (64 - shift))
    total_bits = range_bits - drop + shift
    u_drop, u_shift = np.uint64(drop), np.uint64(shift)
    if n > _MSD_FROM:
        _bucketed_values(
            keys, smallest, y, label, k, weight, u_drop, u_shift, total_bits, index_mask, sorted_, buf,
            buf2, head, counts, cells, cell_map, values,
        )  # fmt: skip
    else:
        _radix_values(
            keys, smallest, y, label, k, weight, u_drop, u_shift, total_bits, index_mask, sorted_, buf,
            dropped, head, counts, values,
        )  # fmt: skip
    # Leave-one-out: removing a row among the K nearest lets the (K+1)-th in.
    enter = 0.0  # with N <= K nothing enters: the row just takes its own vote away
    if n > k:
        enter = float(head[k] & _ONE)
    for r in range(loo_index.shape[0]):  # min(K, N) rows
        packed = head[r]
        loo_index[r] = (packed >> _ONE) & index_mask
        loo_value[r] = weight * (float(packed & _ONE) - enter) / k


@numba.njit(parallel=True, cache=True)
def _value_blocks(
    XT: np.ndarray,
    x_sq: np.ndarray,
    y: np.ndarray,
    V: np.ndarray,
    yv: np.ndarray,
    w: np.ndarray,
    k: int,
    block: int,
    batch: int,
    threads: int,
    first: int,
    last: int,
    total_values: np.ndarray,
    total_loo: np.ndarray,
) -> None:
    """Blocks ``first``..``last - 1`` of the validation rows (``block`` rows each), each thread
    taking a contiguous run of them with its scratch allocated once; each block sums in its own
    buffer (zeroed by its thread, page faults in parallel) and the buffers are added to the totals
    in block order, so the result depends neither on the thread count nor on how the blocks are
    split into calls. Memory: O(N x blocks) for the buffers plus O(N x batch) per thread for
    distances; leave-one-out, K rows per validation row, is kept sparse."""
    n = XT.shape[1]
    m = V.shape[0]
    blocks = last - first
    offset = first * block
    values = np.empty((blocks, n))
    loo_index = np.empty((min(m, last * block) - offset, min(k, n)), np.int64)
    loo_value = np.empty((min(m, last * block) - offset, min(k, n)))
    threads = max(1, min(blocks, threads))
    for t in numba.prange(threads):  # scratch once per thread: fresh pages cost page faults
        rows = min(batch, block)
        keys = np.empty((rows, n), np.uint64)
        bounds = np.empty((rows, 2), np.uint64)
        sorted_ = np.empty(n, np.uint64)
        buf = np.empty(n, np.uint64)
        buf2 = np.empty(n, np.uint64)
        dropped = np.empty(n, np.uint16)
        head = np.empty(k + 1, np.uint64)
        counts = np.empty((64 // _DIGIT_BITS + 1, 1 << _DIGIT_BITS), np.int32)  # half the L1 of int64
        cells = np.empty((4, (1 << _CELL_BITS) + 1), np.int64)
        cell_map = np.empty(1 << _CELL_BITS, np.uint16)
        for b in range(t * blocks // threads, (t + 1) * blocks // threads):  # each block in its buffer
            values[b, :] = 0.0
            stop = min(m, (first + b + 1) * block)
            for start in range((first + b) * block, stop, batch):
                end = min(stop, start + batch)
                _batch_keys(V, start, XT, x_sq, keys[: end - start], bounds)
                for q in range(end - start):
                    row = start + q - offset
                    _row_values(
                        keys[q], bounds[q, 0], bounds[q, 1], y, yv[start + q], k, w[start + q], sorted_,
                        buf, buf2, dropped, head, counts, cells, cell_map, values[b], loo_index[row],
                        loo_value[row],
                    )  # fmt: skip
    for c in numba.prange((n + _TILE - 1) // _TILE):  # each column summed in block order
        for b in range(blocks):
            for i in range(c * _TILE, min(n, (c + 1) * _TILE)):
                total_values[i] += values[b, i]
    _add_sparse_blocks(loo_index, loo_value, block, total_loo)


@numba.njit(cache=True)
def _add_sparse_blocks(index: np.ndarray, value: np.ndarray, block: int, total: np.ndarray) -> None:
    """``total += `` the sum of each block of ``block`` rows of (``index``, ``value``) pairs, block
    by block: the same sums, in the same order, as dense per-block buffers would give."""
    partial = np.zeros(total.shape[0])
    for lo in range(0, index.shape[0], block):
        hi = min(index.shape[0], lo + block)
        for row in range(lo, hi):
            for r in range(index.shape[1]):
                partial[index[row, r]] += value[row, r]
        for row in range(lo, hi):
            for r in range(index.shape[1]):
                i = index[row, r]
                total[i] += partial[i]
                partial[i] = 0.0
