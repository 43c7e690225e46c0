import COpenBLAS
import Foundation

/// C = alpha * op(A) * op(B) + beta * C, row-major, through OpenBLAS's `cblas_sgemm`.
/// op(A) is (m, k), op(B) is (k, n), C is (m, n); `lda`, `ldb`, `ldc` are the row strides.
@inline(__always)
public func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The OpenBLAS kernels this process runs ("Haswell", "SkylakeX", …): chosen at load from the CPU, or
/// from `OPENBLAS_CORETYPE` when the environment sets it. The benchmarks print it beside their figures.
public var blasKernels: String { String(cString: openblas_get_corename()) }

/// The OpenBLAS kernels to ask for through `OPENBLAS_CORETYPE` when OpenBLAS did not know this CPU and
/// fell back to its oldest x86-64 kernels ("Prescott", SSE3), as Debian's OpenBLAS 0.3.21 does on
/// Intel's Emerald Rapids, where they run AlexNet's forward pass about 3x slower than its SkylakeX
/// kernels: `blasKernels(forCPUFlags:)` of /proc/cpuinfo's flags. nil when OpenBLAS chose other
/// kernels, when the environment already sets the variable, or when the CPU offers nothing better.
public func betterBLASKernels() -> String? {
    guard blasKernels == "Prescott", getenv("OPENBLAS_CORETYPE") == nil, let flags = cpuFlags() else { return nil }
    return blasKernels(forCPUFlags: flags)
}

/// The first processor's flags line of /proc/cpuinfo ("avx2", "fma", …); nil where it cannot be read.
public func cpuFlags() -> Set<String>? {
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })?.split(separator: ":").last
    else { return nil }
    return Set(flags.split(separator: " ").map(String.init))
}

/// OpenBLAS's kernels for a CPU with `flags` (as /proc/cpuinfo names them, which lists only what the
/// kernel also enabled): "SkylakeX" with AVX-512 F, CD, BW, DQ and VL, "Haswell" with AVX2 and FMA,
/// else nil.
public func blasKernels(forCPUFlags flags: Set<String>) -> String? {
    if flags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) { return "SkylakeX" }
    if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
    return nil
}

/// y = alpha * op(A) * x + beta * y, row-major, through OpenBLAS's `cblas_sgemv`. A is (m, n) with
/// row stride `lda`; op(A) is (n, m) when `transpose` (then x has m values and y has n), else (m, n).
@inline(__always)
public func sgemv(
    transpose: Bool, m: Int, n: Int, alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ x: UnsafePointer<Float>, beta: Float = 0, _ y: UnsafeMutablePointer<Float>
) {
    cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
}

/// The loop-based oracle for `sgemm`, same arguments; used by the tests.
public func sgemmNaive(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = 0
            for p in 0..<k {
                let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                sum += av * bv
            }
            c[i * ldc + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * ldc + j])
        }
    }
}

/// The most threads that may be inside OpenBLAS at the same time. Every matrix product in flight holds
/// one of its work buffers, from a table sized when the library was built: 2 × MAX_THREADS entries, at
/// least 50 (`openblas_get_config()` names MAX_THREADS; 64 in Debian's, so 128 buffers). Past the table
/// OpenBLAS warns on stderr, and once its overflow fills too it corrupts the heap (1024 workers, each in
/// `sgemm`, did). Half the table, so that threads outside the worker pool have buffers too.
public let blasCallerLimit: Int = {
    let config = String(cString: openblas_get_config())
    let maxThreads = config.split(separator: " ").lazy.compactMap { word in
        word.hasPrefix("MAX_THREADS=") ? Int(word.dropFirst("MAX_THREADS=".count)) : nil
    }.first ?? 0
    return max(50, 2 * maxThreads) / 2
}()

/// Sets the number of threads OpenBLAS uses for every matrix product.
public func setBLASThreads(_ count: Int) {
    openblas_set_num_threads(Int32(count))
}

