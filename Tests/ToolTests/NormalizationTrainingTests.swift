import Foundation
import XCTest
import Net

/// `train` end to end with every normalisation and pooling kind on a few Fashion-MNIST images: one
/// epoch, `--resume`, batch norm's running statistics in the checkpoints and in TensorBoard, `report`.
final class NormalizationTrainingTests: XCTestCase {
    static let spec = "conv:4:3:same,bn,lrn:3:alpha=0.001:beta=0.75:k=2,maxpool:2,conv:6:3:same,bn:momentum=0.2,adaptiveavgpool:3x2,flatten,fc:16,bn,fc"

    /// The first `perClass` training and `perClass / 2` test images of each Fashion-MNIST class, as a
    /// folder data set `DIR/Train/<class>/…png`, `DIR/Test/<class>/…png`.
    private func writeFashionSubset(_ directory: String, perClass: Int) throws {
        let path = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)") }
        let splits = try DataLoader.load(path)
        for (name, split, count) in [("Train", splits.train, perClass), ("Test", splits.test, perClass / 2)] {
            let data = try XCTUnwrap(split)
            var written = [Int](repeating: 0, count: data.classNames.count)
            for i in 0..<data.count where written[Int(data.labels[i])] < count {
                let label = Int(data.labels[i])
                let folder = "\(directory)/\(name)/\(label)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let pixels = Array(data.pixels[i * data.shape.count..<(i + 1) * data.shape.count])
                try Image(width: data.shape.width, height: data.shape.height, channels: 1, pixels: pixels)
                    .writePNG(toFile: String(format: "%@/Image%05d.png", folder, written[label]))
                written[label] += 1
            }
        }
    }

    func testTrainResumeAndReportWithEveryLayerKind() throws {
        let dir = try temporaryDirectory()
        try writeFashionSubset(dir + "/data", perClass: 4)
        let run = dir + "/run"
        let first = try CLI.run(["train", "--data", dir + "/data", "--model", Self.spec, "--epochs", "1", "--batch-size", "10",
                                 "--lr", "0.01", "--weight-decay", "0.01", "--run", run, "--workers", "2"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let afterOne = try Checkpoint.read(from: run + "/checkpoint.safetensors")
        XCTAssertEqual(afterOne.tensor("bn1.num_batches_tracked")?.data, [4], "40 images in batches of 10")
        XCTAssertEqual(afterOne.tensors.first { $0.name == "bn1.num_batches_tracked" }?.isInteger, true)
        let variance = try XCTUnwrap(afterOne.tensor("bn2.running_var")?.data)
        XCTAssertFalse(variance.allSatisfy { $0 == 1 }, "training moves the running statistics")

        let resumed = try CLI.run(["train", "--resume", run + "/checkpoint.safetensors", "--epochs", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("epoch 2/2"), resumed.stdout)
        let afterTwo = try Checkpoint.read(from: run + "/checkpoint.safetensors")
        XCTAssertEqual(afterTwo.tensor("bn3.num_batches_tracked")?.data, [8], "the resumed run carries the count on")
        XCTAssertEqual(afterTwo.tensor("optimizer.state1")?.count, try Sequential.load(contentsOf: run + "/checkpoint.safetensors").model.parameterCount,
                       "the optimizer's state covers the parameters only, not the running statistics")

        let events = try FileManager.default.contentsOfDirectory(atPath: run + "/tensorboard").filter { $0.hasPrefix("events.out.tfevents.") }
        let bytes = try events.reduce(Data()) { $0 + (try Data(contentsOf: URL(fileURLWithPath: run + "/tensorboard/" + $1))) }
        for tag in ["buffers/bn1.running_mean", "buffers/bn3.running_var", "weights/bn2.weight"] {
            XCTAssertNotNil(bytes.range(of: Data(tag.utf8)), "TensorBoard has \(tag)")
        }

        let eval = try CLI.run(["eval", "--checkpoint", run + "/checkpoint.safetensors", "--data", dir + "/data", "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let report = try CLI.run(["report", run, "--out", dir + "/report"])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/report/index.html"))
    }
}
