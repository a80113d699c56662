"""LLVM operations that numba does not expose, as numba intrinsics for the KNN-Shapley kernel: a
cache prefetch, and a register-blocked block of dot products in explicit SIMD vectors (LLVM's
auto-vectoriser keeps such sums in memory, and on AVX-512 machines it picks 256-bit vectors)."""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

llvm.initialize_native_target()
_WIDE = llvm.get_host_cpu_features().get("avx512f", False)
DOT_ROWS = 8 if _WIDE else 4  # validation rows per dot block: 2 x DOT_ROWS vector registers of sums
_LANES = 8 if _WIDE else 4  # doubles per vector register (AVX-512: 8, AVX2: 4)
DOT_COLUMNS = 2 * _LANES  # training rows per dot block


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
        first_, rows_, column_, offset_ = args[1], args[2], args[4], args[6]
        # Without this, LLVM splits 512-bit vectors in two on CPUs tuned to prefer 256-bit ones.
        set.add(builder.function.attributes, f'"min-legal-vector-width"="{64 * _LANES}"')
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vector = ir.VectorType(ir.DoubleType(), _LANES)
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{_LANES}f64"
        )
        features = builder.extract_value(x_view.shape, 0)
        n = builder.extract_value(x_view.shape, 1)
        v_width = builder.extract_value(v_view.shape, 1)
        out_width = builder.extract_value(out_view.shape, 1)
        last = builder.sub(rows_, i64(1))
        v_rows = []
        for r in range(DOT_ROWS):
            clipped = builder.select(builder.icmp_signed("<", i64(r), last), i64(r), last)
            v_rows.append(builder.gep(v_view.data, [builder.mul(builder.add(first_, clipped), v_width)]))
        x_base = builder.gep(x_view.data, [column_])
        entry = builder.basic_block
        loop = builder.append_basic_block("dot.features")
        done = builder.append_basic_block("dot.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        j = builder.phi(i64)
        j.add_incoming(i64(0), entry)
        sums = []
        for _ in range(2 * DOT_ROWS):
            phi = builder.phi(vector)
            phi.add_incoming(ir.Constant(vector, None), entry)
            sums.append(phi)
        x_row = builder.gep(x_base, [builder.mul(j, n)])
        xs = [
            builder.load(builder.bitcast(builder.gep(x_row, [i64(c * _LANES)]), vector.as_pointer()), align=8)
            for c in range(2)
        ]
        undef = ir.Constant(vector, ir.Undefined)
        splat = ir.Constant(ir.VectorType(i32, _LANES), [0] * _LANES)
        updated = []
        for r in range(DOT_ROWS):
            v = builder.load(builder.gep(v_rows[r], [j]))
            broadcast = builder.shuffle_vector(builder.insert_element(undef, v, i32(0)), undef, splat)
            updated += [builder.call(fma, [broadcast, xs[c], sums[2 * r + c]]) for c in range(2)]
        j_next = builder.add(j, i64(1))
        j.add_incoming(j_next, loop)
        for phi, value in zip(sums, updated, strict=True):
            phi.add_incoming(value, loop)
        builder.cbranch(builder.icmp_signed("<", j_next, features), loop, done)
        builder.position_at_end(done)
        for r in range(DOT_ROWS):
            out_row = builder.gep(out_view.data, [builder.add(builder.mul(i64(r), out_width), offset_)])
            for c in range(2):
                target = builder.bitcast(builder.gep(out_row, [i64(c * _LANES)]), vector.as_pointer())
                builder.store(updated[2 * r + c], target, align=8)
        return context.get_dummy_value()

    i64 = types.int64
    return types.void(V, i64, i64, XT, i64, out, i64), codegen
