// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The kernels' release optimisation. NetKernels (Sources/NetKernels: the arithmetic over buffers, the
/// optimizers' update rules, the scratch memory and the worker pool) is compiled `-Ounchecked`; the rest of Net (where sizes and values
/// from outside are read and checked) is compiled `-O` always, so the release build that users run keeps
/// its preconditions and integer-overflow traps. `DECONVNET_CHECKED=1` compiles the kernels `-O` too: the
/// fully checked build, on which `make test` runs the suite a second time. `-O` stays out of the kernels'
/// default because it costs more than 3 % (README, "Checked builds").
let kernelOptimization = ProcessInfo.processInfo.environment["DECONVNET_CHECKED"] == "1" ? "-O" : "-Ounchecked"

/// Release builds of the engine on x86-64 Linux target AVX2 and FMA (Haswell and later, AMD Zen and
/// later) so the lane loops (recurrent cells, activations, Adam, im2col) run eight floats wide. Decided
/// by the machine that reads this manifest, which is the target machine for a native build.
#if arch(x86_64) && os(Linux)
let netCPUFlags = ["-target-cpu", "haswell"]
#else
let netCPUFlags: [String] = []
#endif

let package = Package(
    name: "deconvnet",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "deconvnet", targets: ["Tool"]),
        .library(name: "Net", targets: ["Net"]),
        .library(name: "Deconv", targets: ["Deconv"]),
        .library(name: "Occlusion", targets: ["Occlusion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CFreeType", pkgConfig: "freetype2", providers: [.apt(["libfreetype-dev", "libfontconfig-dev"])]),
        .target(
            name: "NetKernels",
            dependencies: ["COpenBLAS"],
            swiftSettings: [.unsafeFlags([kernelOptimization] + netCPUFlags, .when(configuration: .release))]
        ),
        .target(
            name: "Net",
            dependencies: ["NetKernels", "CPNG", "CJPEG", "CZlib"],
            swiftSettings: [.unsafeFlags(["-O"] + netCPUFlags, .when(configuration: .release))]
        ),
        .target(name: "Deconv", dependencies: ["Net"]),
        .target(name: "Occlusion", dependencies: ["Net", "Deconv"]),
        .executableTarget(
            name: "Tool",
            dependencies: ["Net", "Deconv", "Occlusion", "CFreeType",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "FlyingFox", package: "FlyingFox")]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NetTests", dependencies: ["Net", "NetKernels", "TestSupport"]),
        .testTarget(name: "DeconvTests", dependencies: ["Deconv", "Net", "TestSupport"]),
        .testTarget(name: "OcclusionTests", dependencies: ["Occlusion", "Deconv", "Net"]),
        .testTarget(name: "ToolTests", dependencies: ["Net", "Tool", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
