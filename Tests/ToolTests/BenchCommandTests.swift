import Foundation
import Net
import XCTest

/// `bench train --conv-path`: a path every convolution can take is taken and named in the output; one
/// that a layer cannot take stops the run with one line and exit 64 (a bad value for this model).
final class BenchCommandTests: XCTestCase {
    func testConvPathIsTakenOrRefused() throws {
        let quick = ["--batch-size", "2", "--steps", "1", "--repeats", "1", "--json"]
        let taken = try CLI.run(["bench", "train", "--model", "lenet5-classic", "--conv-path", "winograd"] + quick)
        XCTAssertEqual(taken.status, 0, taken.stderr)
        XCTAssertTrue(taken.stdout.contains(#""conv_path":"winograd""#), taken.stdout)
        XCTAssertTrue(taken.stdout.contains(#""blas":""#) && !taken.stdout.contains(#""blas":"""#), "names the OpenBLAS kernels: \(taken.stdout)")
        let refused = ["bench", "train", "--model", "zfnet", "--conv-path", "winograd"] + quick  // conv1 is 7x7 with stride 2
        try assertCleanFailure(refused, mentions: "conv1 cannot take it")
        XCTAssertEqual(try CLI.run(refused).status, 64)
    }

    /// On a CPU that OpenBLAS does not know (it falls back to its SSE3 "Prescott" kernels), the command
    /// starts itself again with the kernels the CPU's flags call for; a kernel set the environment names
    /// is kept. On a CPU OpenBLAS knows, the first check holds as well.
    func testRunsTheOpenBLASKernelsTheCPUCallsFor() throws {
        let quick = ["bench", "train", "--model", "lenet5", "--batch-size", "2", "--steps", "1", "--repeats", "1", "--json"]
        func kernels(_ environment: [String: String]) throws -> String {
            let result = try CLI.run(quick, environment: environment)
            XCTAssertEqual(result.status, 0, result.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return try XCTUnwrap(json?["blas"] as? String, result.stdout)
        }
        let flags = try XCTUnwrap(cpuFlags(), "/proc/cpuinfo's flags")
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, blasKernels(forCPUFlags: flags) != nil {
            XCTAssertNotEqual(try kernels([:]), "Prescott", "an AVX2 or AVX-512 CPU runs OpenBLAS's SSE3 kernels")
        }
        XCTAssertEqual(try kernels(["OPENBLAS_CORETYPE": "Prescott"]), "Prescott", "the environment's choice is kept")
    }
}

/// `bench project` and `bench occlusion` on a checkpoint: the layer, channel, window and stride asked
/// for are the ones measured, the JSON line states the peak memory, and a value the model cannot take is
/// one line and exit 64.
final class BenchCheckpointTests: XCTestCase {
    func testProjectAndOcclusionOnACheckpoint() throws {
        let dir = try temporaryDirectory()
        let checkpoint = try writeUntrainedCheckpoint("conv:4:3:same,maxpool:2,conv:6:3:same,maxpool:2,fc:16,fc", in: dir, seed: 3)
        let project = try CLI.run(["bench", "project", "--checkpoint", checkpoint, "--layer", "conv1", "--channel", "2",
                                   "--projections", "2", "--repeats", "1", "--json"])
        XCTAssertEqual(project.status, 0, project.stderr)
        let projected = try JSONSerialization.jsonObject(with: Data(project.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(projected["layer"] as? String, "conv1")
        XCTAssertGreaterThan(projected["model_forward_ms"] as? Double ?? -1, 0)
        XCTAssertGreaterThan(projected["peak_rss_mib"] as? Double ?? -1, 1)
        XCTAssertFalse((projected["blas"] as? String ?? "").isEmpty, project.stdout)
        let placed = try CLI.run(["bench", "project", "--checkpoint", checkpoint, "--layer", "conv2", "--channel", "5", "--position", "4,1",
                                  "--projections", "2", "--repeats", "1", "--json"])
        XCTAssertEqual(placed.status, 0, placed.stderr)
        XCTAssertTrue(placed.stdout.contains(#""unit":[5,4,1]"#), placed.stdout)

        let occlusion = try CLI.run(["bench", "occlusion", "--checkpoint", checkpoint, "--layer", "conv1", "--window", "4", "--stride", "4",
                                     "--repeats", "1", "--json"])
        XCTAssertEqual(occlusion.status, 0, occlusion.stderr)
        let occluded = try JSONSerialization.jsonObject(with: Data(occlusion.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(occluded["layer"] as? String, "conv1")
        XCTAssertEqual(occluded["positions"] as? Int, 9)  // (12 - 4) / 4 + 1 = 3 per side
        XCTAssertGreaterThan(occluded["peak_rss_mib"] as? Double ?? -1, 1)
        XCTAssertFalse((occluded["blas"] as? String ?? "").isEmpty, occlusion.stdout)

        let bad: [([String], String)] = [
            (["project", "--layer", "conv9"], "conv9"),
            (["project", "--layer", "fc1"], "fc1"),
            (["project", "--layer", "conv2", "--channel", "6"], "--channel"),
            (["project", "--channel", "-1"], "--channel"),
            (["project", "--layer", "conv2", "--position", "6,0"], "--position"),
            (["occlusion", "--layer", "conv9"], "conv9"),
            (["occlusion", "--window", "13"], "--window 13"),
            (["occlusion", "--stride", "0"], "--stride"),
        ]
        for (arguments, needle) in bad {
            try assertCleanFailure(["bench"] + arguments + ["--checkpoint", checkpoint, "--repeats", "1"], mentions: needle, status: 64)
        }
    }
}
