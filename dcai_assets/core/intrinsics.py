"""LLVM operations that numba does not expose, as numba intrinsics for the KNN-Shapley kernel: a
cache prefetch, and register-blocked blocks of dot products in explicit SIMD vectors (LLVM's
auto-vectoriser keeps such sums in memory, and on AVX-512 machines it picks 256-bit vectors).
Vectors are 512-bit where the CPU has AVX-512, 256-bit otherwise; LLVM splits them further on
CPUs with narrower ones, so the code is correct everywhere and fast on x86."""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


def _has_avx512() -> bool:
    """Whether this CPU has AVX-512 (numba compiles for the host CPU)."""
    llvm.initialize_native_target()
    try:
        return bool(llvm.get_host_cpu_features().get("avx512f", False))
    except RuntimeError:  # LLVM cannot tell on some hosts
        return False


_WIDE = _has_avx512()
LANES = 8 if _WIDE else 4  # doubles per vector register
DOT_ROWS = 8 if _WIDE else 4  # validation rows per dot block: 2 x DOT_ROWS vector registers of sums
DOT_COLUMNS = 2 * LANES  # training rows per dot block


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring ``array[index]`` into cache for a write (LLVM's prefetch): random
    additions then overlap their memory latency instead of waiting for each line."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [builder.bitcast(pointer, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


def _emit_dots(
    context: object,
    builder: ir.IRBuilder,
    v_view: object,
    first: ir.Value,
    rows: ir.Value,
    x_view: object,
    column: ir.Value,
) -> list[ir.Value]:
    """IR for the sums of :func:`dot_block`: a loop over the features with 2 x DOT_ROWS vector
    registers of fused multiply-adds; returns the sums (row r's two vectors at 2r, 2r + 1)."""
    # Without this, LLVM splits 512-bit vectors in two on CPUs tuned to prefer 256-bit ones.
    set.add(builder.function.attributes, f'"min-legal-vector-width"="{64 * LANES}"')
    i64 = ir.IntType(64)
    vector = ir.VectorType(ir.DoubleType(), LANES)
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{LANES}f64"
    )
    features = builder.extract_value(x_view.shape, 0)
    n = builder.extract_value(x_view.shape, 1)
    v_width = builder.extract_value(v_view.shape, 1)
    v_rows = []
    for r in range(DOT_ROWS):
        q = builder.add(first, _clipped(builder, r, rows))
        v_rows.append(builder.gep(v_view.data, [builder.mul(q, v_width)]))
    x_base = builder.gep(x_view.data, [column])
    entry = builder.basic_block
    loop = builder.append_basic_block("dot.features")
    done = builder.append_basic_block("dot.done")
    zero = ir.Constant(vector, None)
    builder.cbranch(builder.icmp_signed(">", features, i64(0)), loop, done)  # no features: all 0
    builder.position_at_end(loop)
    j = builder.phi(i64)
    j.add_incoming(i64(0), entry)
    sums = []
    for _ in range(2 * DOT_ROWS):
        phi = builder.phi(vector)
        phi.add_incoming(zero, entry)
        sums.append(phi)
    x_row = builder.gep(x_base, [builder.mul(j, n)])
    xs = [_load(builder, builder.gep(x_row, [i64(c * LANES)]), vector) for c in range(2)]
    updated = []
    for r in range(DOT_ROWS):
        broadcast = _splat(builder, builder.load(builder.gep(v_rows[r], [j])), vector)
        updated += [builder.call(fma, [broadcast, xs[c], sums[2 * r + c]]) for c in range(2)]
    j_next = builder.add(j, i64(1))
    j.add_incoming(j_next, loop)
    for phi, value in zip(sums, updated, strict=True):
        phi.add_incoming(value, loop)
    builder.cbranch(builder.icmp_signed("<", j_next, features), loop, done)
    builder.position_at_end(done)
    results = []
    for value in updated:
        result = builder.phi(vector)
        result.add_incoming(zero, entry)
        result.add_incoming(value, loop)
        results.append(result)
    return results


def _clipped(builder: ir.IRBuilder, r: int, rows: ir.Value) -> ir.Value:
    """min(r, rows - 1) in IR: rows past the last repeat it, so every register has work."""
    i64 = ir.IntType(64)
    last = builder.sub(rows, i64(1))
    return builder.select(builder.icmp_signed("<", i64(r), last), i64(r), last)


def _load(builder: ir.IRBuilder, pointer: ir.Value, vector: ir.VectorType) -> ir.Value:
    """An unaligned vector load at a scalar pointer."""
    return builder.load(builder.bitcast(pointer, vector.as_pointer()), align=8)


def _store(builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value) -> None:
    """An unaligned vector store at a scalar pointer."""
    builder.store(value, builder.bitcast(pointer, value.type.as_pointer()), align=8)


def _store_keys(
    builder: ir.IRBuilder, vectors: list[ir.Value], target: ir.Value, streaming: ir.Value
) -> None:
    """Store ``vectors`` one after another at ``target``: non-temporal when ``streaming`` and
    ``target`` is 64-byte aligned (what those stores need), plain stores otherwise."""
    i64 = ir.IntType(64)
    aligned = builder.icmp_unsigned("==", builder.and_(builder.ptrtoint(target, i64), i64(63)), i64(0))
    offsets = [i64(c * vectors[0].type.count) for c in range(len(vectors))]
    with builder.if_else(builder.and_(streaming, aligned)) as (around_cache, plain):
        with around_cache:
            hint = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
            for vector, offset in zip(vectors, offsets, strict=True):
                pointer = builder.bitcast(builder.gep(target, [offset]), vector.type.as_pointer())
                width = 8 * vector.type.count  # bytes; each vector lies on a multiple of its size
                builder.store(vector, pointer, align=width).set_metadata("nontemporal", hint)
        with plain:
            for vector, offset in zip(vectors, offsets, strict=True):
                _store(builder, vector, builder.gep(target, [offset]))


def _splat(builder: ir.IRBuilder, scalar: ir.Value, vector: ir.VectorType) -> ir.Value:
    """``scalar`` in every lane of a vector."""
    i32 = ir.IntType(32)
    undef = ir.Constant(vector, ir.Undefined)
    lanes = ir.Constant(ir.VectorType(i32, vector.count), [0] * vector.count)
    return builder.shuffle_vector(builder.insert_element(undef, scalar, i32(0)), undef, lanes)


@intrinsic
def dot_block(typingctx, V, first, rows, XT, column, out, offset):
    """``out[r, offset:offset + DOT_COLUMNS]`` = the dot products of row ``first + min(r, rows -
    1)`` of V (r < DOT_ROWS) with columns ``column..column + DOT_COLUMNS - 1`` of XT, each summed
    feature by feature as a chain of fused multiply-adds from 0 (so a scalar loop of
    ``a = a + v * x`` under fastmath "contract" gives the same numbers bit for bit). The sums stay
    in registers across all features; V and XT must be C-contiguous float64, ``out`` too."""

    def codegen(context, builder, signature, args):
        v_type, _, _, x_type, _, out_type, _ = signature.args
        v_view = context.make_array(v_type)(context, builder, args[0])
        x_view = context.make_array(x_type)(context, builder, args[3])
        out_view = context.make_array(out_type)(context, builder, args[5])
        sums = _emit_dots(context, builder, v_view, args[1], args[2], x_view, args[4])
        i64 = ir.IntType(64)
        out_width = builder.extract_value(out_view.shape, 1)
        for r in range(DOT_ROWS):
            out_row = builder.gep(out_view.data, [builder.add(builder.mul(i64(r), out_width), args[6])])
            for c in range(2):
                _store(builder, sums[2 * r + c], builder.gep(out_row, [i64(c * LANES)]))
        return context.get_dummy_value()

    i64 = types.int64
    return types.void(V, i64, i64, XT, i64, out, i64), codegen


@intrinsic
def distance_keys_block(typingctx, V, first, rows, XT, column, x_sq, v_sq, keys, lanes, streaming):
    """As :func:`dot_block`, but finished in registers: the squared distances
    ``v_sq[q] + x_sq[i] - 2 v.x`` (the same numbers as that formula in numba) as sortable keys
    (unsigned order = float order) in ``keys[q, column + i]``, q = min(r, rows - 1), and the
    running lane-wise smallest and largest key of row q in ``lanes[q, 0]`` and ``lanes[q, 1]``.
    ``v_sq``, ``keys`` and ``lanes`` are indexed from row ``first`` of V (pass slices). With
    ``streaming`` nonzero, rows of keys that start on a cache line are written around the cache
    (non-temporal stores): keys that will be read back from memory anyway then cost no read
    of the line before the write."""

    def codegen(context, builder, signature, args):
        v_type, _, _, x_type, _, xsq_type, vsq_type, keys_type, lanes_type, _ = signature.args
        v_view = context.make_array(v_type)(context, builder, args[0])
        x_view = context.make_array(x_type)(context, builder, args[3])
        xsq_view = context.make_array(xsq_type)(context, builder, args[5])
        vsq_view = context.make_array(vsq_type)(context, builder, args[6])
        keys_view = context.make_array(keys_type)(context, builder, args[7])
        lanes_view = context.make_array(lanes_type)(context, builder, args[8])
        rows, column = args[2], args[4]
        streaming = builder.icmp_signed("!=", args[9], ir.IntType(64)(0))
        sums = _emit_dots(context, builder, v_view, args[1], rows, x_view, column)
        i64 = ir.IntType(64)
        doubles = sums[0].type
        words = ir.VectorType(i64, LANES)
        umin = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(words, [words] * 2), f"llvm.umin.v{LANES}i64"
        )
        umax = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(words, [words] * 2), f"llvm.umax.v{LANES}i64"
        )
        two = ir.Constant(doubles, [2.0] * LANES)
        sign = ir.Constant(words, [1 << 63] * LANES)
        x_sq_vectors = [
            _load(builder, builder.gep(xsq_view.data, [builder.add(column, i64(c * LANES))]), doubles)
            for c in range(2)
        ]
        n = builder.extract_value(keys_view.shape, 1)
        for r in range(DOT_ROWS):
            row = _clipped(builder, r, rows)
            v_sq_r = _splat(builder, builder.load(builder.gep(vsq_view.data, [row])), doubles)
            target = builder.gep(keys_view.data, [builder.add(builder.mul(row, n), column)])
            bounds = builder.gep(lanes_view.data, [builder.mul(row, i64(2 * LANES))])
            smallest = _load(builder, bounds, words)
            largest = _load(builder, builder.gep(bounds, [i64(LANES)]), words)
            row_keys = []
            for c in range(2):
                distance = builder.fsub(
                    builder.fadd(v_sq_r, x_sq_vectors[c]), builder.fmul(two, sums[2 * r + c])
                )
                bits = builder.bitcast(distance, words)
                negative = builder.sub(
                    ir.Constant(words, None), builder.lshr(bits, ir.Constant(words, [63] * LANES))
                )
                row_keys.append(builder.xor(bits, builder.or_(negative, sign)))
                smallest = builder.call(umin, [smallest, row_keys[c]])
                largest = builder.call(umax, [largest, row_keys[c]])
            _store_keys(builder, row_keys, target, streaming)
            _store(builder, smallest, bounds)
            _store(builder, largest, builder.gep(bounds, [i64(LANES)]))
        return context.get_dummy_value()

    i64 = types.int64
    return types.void(V, i64, i64, XT, i64, x_sq, v_sq, keys, lanes, i64), codegen
