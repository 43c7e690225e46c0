import Foundation
import XCTest
import Net

/// The projection commands end to end on a tiny trained model: files written with the promised
/// shapes, and one clear error line for bad layers, channels, images and models.
final class DeconvCommandTests: XCTestCase {
    func testProjectionCommands() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let run = dir + "/run"
        let trained = try CLI.run(["train", "--data", dir + "/data", "--model", "conv:4:3:same,maxpool:2,conv:6:3:same,maxpool:2,fc",
                                   "--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--run", run, "--save-every", "1"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let checkpoint = run + "/checkpoint.safetensors"

        let project = try CLI.run(["project", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "3", "--layer", "conv2",
                                   "--out", dir + "/p.png", "--npy", dir + "/p.npy"])
        XCTAssertEqual(project.status, 0, project.stderr)
        XCTAssertTrue(project.stdout.contains("conv2 channel"), project.stdout)
        XCTAssertTrue(project.stdout.contains("receptive field 8x8"), project.stdout)  // conv1 3, pool1 3 + 1 = 4 (jump 2), conv2 4 + 2·2 = 8
        XCTAssertEqual(try readNpy(from: dir + "/p.npy").shape, [1, 12, 12])
        let png = try Image(contentsOfFile: dir + "/p.png")
        XCTAssertGreaterThan(png.width, 4 * 12)

        let top = try CLI.run(["top", "--checkpoint", checkpoint, "--data", dir + "/data", "--layer", "pool2", "--channels", "0-2", "--k", "4",
                               "--out", dir + "/top"])
        XCTAssertEqual(top.status, 0, top.stderr)
        for file in ["overview.png", "channel-00.png", "channel-02.png", "index.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/top/" + file), file)
        }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/top/index.json"))) as! [String: Any]
        let channels = index["channels"] as! [[String: Any]]
        XCTAssertEqual(channels.count, 3)
        XCTAssertEqual((channels[0]["tiles"] as! [Any]).count, 4)

        let evolution = try CLI.run(["evolution", "--checkpoints", run + "/checkpoints/epoch-1.safetensors", run + "/checkpoints/epoch-2.safetensors",
                                     "--data", dir + "/data", "--layer", "conv1", "--out", dir + "/evo"])
        XCTAssertEqual(evolution.status, 0, evolution.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/evo/evolution.png"))

        let filters = try CLI.run(["filters", "--checkpoint", checkpoint, "--out", dir + "/f.png"])
        XCTAssertEqual(filters.status, 0, filters.stderr)
        let maps = try CLI.run(["featuremaps", "--checkpoint", checkpoint, "--data", dir + "/data", "--images", "2", "--layer", "conv1", "--out", dir + "/m.png"])
        XCTAssertEqual(maps.status, 0, maps.stderr)

        try assertCleanFailure(["project", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "0", "--layer", "conv9", "--out", dir + "/x.png"],
                               mentions: "conv9", status: 64)
        try assertCleanFailure(["project", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "0", "--layer", "conv2", "--channel", "6",
                                "--out", dir + "/x.png"], mentions: "channel 6", status: 64)
        try assertCleanFailure(["top", "--checkpoint", checkpoint, "--data", dir + "/data", "--layer", "conv1", "--channels", "2-9", "--out", dir + "/t"],
                               mentions: "channel", status: 64)
        let notAnImage = dir + "/not-an-image.png"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notAnImage))
        try assertCleanFailure(["project", "--checkpoint", checkpoint, "--image", notAnImage, "--layer", "conv1", "--out", dir + "/x.png"],
                               mentions: "not-an-image.png")
        let dense = dir + "/dense.safetensors"
        try Sequential(spec: try ModelSpec(parsing: "fc:8,fc"), inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3)
            .checkpoint(classNames: ["0", "1", "2"], epoch: 0, step: 0).write(to: dense)
        try assertCleanFailure(["project", "--checkpoint", dense, "--data", dir + "/data", "--index", "0", "--layer", "conv1", "--out", dir + "/x.png"],
                               mentions: "no convolution", status: 1)
    }
}
