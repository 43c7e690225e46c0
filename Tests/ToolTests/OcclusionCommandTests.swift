import Foundation
import XCTest
import TestSupport
import Net

/// The occlusion commands end to end on a small random-weight model: files with the promised shapes,
/// and one clear error line for bad windows, strides, targets, images and regions.
final class OcclusionCommandTests: XCTestCase {
    func testOcclusionCommands() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let checkpoint = dir + "/model.safetensors"
        try Sequential(spec: try ModelSpec(parsing: "conv:4:3:same,maxpool:2,conv:6:3:same,maxpool:2,fc:16,dropout:0.5,fc"),
                       inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3, seed: 3)
            .checkpoint(classNames: ["0", "1", "2"], epoch: 0, step: 0).write(to: checkpoint)
        let data = dir + "/data"

        let occlude = try CLI.run(["occlude", "--checkpoint", checkpoint, "--data", data, "--index", "2", "--window", "4", "--stride", "2",
                                   "--fill", "mean", "--out", dir + "/occ", "--npy"])
        XCTAssertEqual(occlude.status, 0, occlude.stderr)
        XCTAssertTrue(occlude.stdout.contains("5x5 positions"), occlude.stdout)
        for file in ["class-score", "feature-activity", "most-probable-class", "attribution"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/occ/\(file).png"), file)
        }
        XCTAssertEqual(try readNpy(from: dir + "/occ/class-score.npy").shape, [5, 5])
        XCTAssertEqual(try readNpy(from: dir + "/occ/most-probable-class.npy").shape, [5, 5])
        XCTAssertEqual(try readNpy(from: dir + "/occ/attribution.npy").shape, [1, 12, 12])
        XCTAssertEqual(try readNpy(from: dir + "/occ/feature-projection.npy").shape, [1, 12, 12])
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/occ/occlusion.json"))) as! [String: Any]
        XCTAssertEqual(summary["featureLayer"] as? String, "conv2")
        XCTAssertEqual(summary["targetSource"] as? String, "label")

        let correspondence = try CLI.run(["correspondence", "--checkpoint", checkpoint, "--data", data, "--indices", "0,1,2",
                                          "--region", "2,2,4,4", "--random", "3", "--json"])
        XCTAssertEqual(correspondence.status, 0, correspondence.stderr)
        let table = try JSONSerialization.jsonObject(with: Data(correspondence.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((table["layers"] as! [Any]).count, 5)  // conv1, pool1, conv2, pool2, fc1

        let invariance = try CLI.run(["invariance", "--checkpoint", checkpoint, "--data", data, "--index", "1", "--transform", "rotate",
                                      "--range=-30:30:10", "--out", dir + "/inv"])
        XCTAssertEqual(invariance.status, 0, invariance.stderr)
        let csv = try String(contentsOfFile: dir + "/inv/invariance.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 8)
        XCTAssertTrue(csv[0].hasPrefix("amount,distance_conv1,distance_fc1,"))
        XCTAssertTrue(try String(contentsOfFile: dir + "/inv/invariance.svg", encoding: .utf8).hasPrefix("<svg"))

        let base = ["occlude", "--checkpoint", checkpoint, "--data", data, "--index", "0", "--out", dir + "/bad"]
        try assertCleanFailure(base + ["--window", "13"], mentions: "does not fit")
        try assertCleanFailure(base + ["--stride", "0"], mentions: "--stride")
        try assertCleanFailure(base + ["--target", "3"], mentions: "target class 3")
        // a layer or channel the model does not have is a bad flag value, as in `project` and the benches
        try assertCleanFailure(base + ["--layer", "conv9"], mentions: "no layer 'conv9'", status: 64)
        try assertCleanFailure(base + ["--layer", "conv2", "--channel", "99"], mentions: "channel 99", status: 64)
        let notAnImage = dir + "/not-an-image.png"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notAnImage))
        try assertCleanFailure(["occlude", "--checkpoint", checkpoint, "--image", notAnImage, "--out", dir + "/bad"], mentions: "not-an-image.png")
        try assertCleanFailure(["correspondence", "--checkpoint", checkpoint, "--data", data, "--indices", "0,1", "--region", "10,10,4,4"],
                               mentions: "not inside")
    }

    /// The attribution against Captum's `Occlusion` on the PyTorch twin of the model (skipped without
    /// python3, torch, captum and safetensors).
    func testAttributionMatchesCaptum() throws {
        try Python.require("torch, captum, safetensors")
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let checkpoint = dir + "/model.safetensors"
        try Sequential(spec: try ModelSpec(parsing: "conv:4:3:same,maxpool:2,conv:6:3:same,avgpool:2,fc:16,dropout:0.5,fc"),
                       inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3, seed: 4)
            .checkpoint(classNames: ["0", "1", "2"], epoch: 0, step: 0).write(to: checkpoint)
        let script = Python.script("check_occlusion_captum.py")
        for extra in [["--window", "4", "--stride", "1"], ["--window", "4", "--stride", "2", "--score", "logit", "--fill", "mean"]] {
            let out = dir + "/occ\(extra.count)\(extra[3])"
            let occlude = try CLI.run(["occlude", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "4", "--out", out, "--npy"] + extra)
            XCTAssertEqual(occlude.status, 0, occlude.stderr)
            let check = Python.run([script, checkpoint, out])
            XCTAssertEqual(check.status, 0, check.output)
        }
    }
}
