import Foundation
import Net
import TestSupport
import XCTest
@testable import Tool

/// `deconvnet explore` as a user meets it: the built binary serving the committed Fashion-MNIST
/// checkpoint (a copy in a temporary folder, so that the top-9 cache lands there) over loopback.
final class ExploreTests: XCTestCase {
    static let fashion = "/usr/share/datasets/fashion-mnist"
    static let checkpoint = Python.packageRoot.appendingPathComponent("checkpoints/lenet5-fashion-mnist.safetensors").path

    /// One server for the tests that need the data set, started on first use.
    nonisolated(unsafe) static var shared: (process: Process, port: UInt16, folder: String)?

    override class func tearDown() {
        if let shared { kill(shared.process.processIdentifier, SIGINT); shared.process.waitUntilExit() }
        shared = nil
        super.tearDown()
    }

    /// Starts `deconvnet explore ARGS --port 0` and returns it with the port from the URL it prints
    /// (for `host`, the address it listens on).
    static func startServer(_ arguments: [String], host: String = "127.0.0.1") throws -> (Process, UInt16) {
        let process = try CLI.start(["explore"] + arguments + ["--port", "0"])
        let out = (process.standardOutput as! Pipe).fileHandleForReading
        var line = Data()
        let deadline = Date().addingTimeInterval(120)
        while !line.contains(10), Date() < deadline, process.isRunning {
            line += out.availableData
        }
        let text = String(decoding: line, as: UTF8.self)
        let prefix = "explore: http://\(host):"
        guard text.hasPrefix(prefix), text.contains("/ (Ctrl-C stops)\n"), let port = UInt16(text.dropFirst(prefix.count).prefix { $0.isNumber }) else {
            process.terminate()
            throw NoURL(output: text)
        }
        return (process, port)
    }

    struct NoURL: Error { var output: String }

    func server() throws -> (port: UInt16, folder: String) {
        guard FileManager.default.fileExists(atPath: Self.fashion) else { throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)") }
        if let shared = Self.shared { return (shared.port, shared.folder) }
        let folder = NSTemporaryDirectory() + "deconvnet-explore-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.checkpoint, toPath: folder + "/lenet5.safetensors")
        try Self.writeEarlierSnapshot(to: folder + "/lenet5-epoch1.safetensors")
        let (process, port) = try Self.startServer(["--checkpoint", folder + "/lenet5.safetensors", "--data", Self.fashion,
                                                    "--checkpoints", folder + "/lenet5-epoch1.safetensors"])
        Self.shared = (process, port, folder)
        return (port, folder)
    }

    /// A stand-in for an earlier snapshot of the committed checkpoint, for the epoch slider: the same
    /// architecture, every weight scaled by its own factor in [0.5, 1.5] (so that projections differ), and
    /// epoch 1 of the checkpoint's 3.
    static func writeEarlierSnapshot(to path: String) throws {
        var snapshot = try Checkpoint.read(from: checkpoint)
        for i in snapshot.tensors.indices where !snapshot.tensors[i].isInteger {
            snapshot.tensors[i].tensor.data = snapshot.tensors[i].tensor.data.enumerated().map { j, w in w * (1 + 0.5 * sin(Float(j))) }
        }
        snapshot.metadata[CheckpointKey.epoch] = "1"
        snapshot.metadata[CheckpointKey.step] = "600"
        try snapshot.write(to: path)
    }

    func testBadRequestsGetAJSONErrorAndTheServerKeepsServing() throws {
        let client = LoopbackClient(port: try server().port)
        let bad: [(String, Int, String)] = [
            ("/api/project?image=0&layer=conv2", 400, "'channel' is missing"),
            ("/api/project?image=0&layer=conv9&channel=0", 400, "no layer named 'conv9'"),
            ("/api/project?image=0&layer=fc1&channel=0", 400, "no feature maps"),
            ("/api/project?image=10000&layer=conv2&channel=0", 400, "image 10000 is out of range 0-9999"),
            ("/api/project?image=-1&layer=conv2&channel=0", 400, "whole number"),
            ("/api/project?image=0&layer=conv2&channel=64", 400, "channel 64 is out of range 0-63"),
            ("/api/project?image=0&layer=conv2&channel=0&y=3", 400, "both y and x"),
            ("/api/project?image=0&layer=conv2&channel=0&y=14&x=0", 400, "y 14 is out of range 0-13"),
            ("/api/project?image=0&layer=conv2&channel=0&method=lrp", 400, "method must be one of deconvnet, guided, gradient"),
            ("/api/project?image=0&layer=conv2&channel=0&format=jpg", 400, "format must be one of"),
            ("/api/project?image=0&image=1&layer=conv2&channel=0", 400, "given twice"),
            ("/api/project?image=0&upload=u1&layer=conv2&channel=0", 400, "either image=K"),
            ("/api/project?upload=../../etc/passwd&layer=conv2&channel=0", 400, "no upload"),
            ("/api/project?image=99999999999999999999&layer=conv2&channel=0", 400, "whole number"),
            ("/api/forward?image=0&path=/etc/passwd", 400, "unknown parameter 'path'"),
            ("/api/images?limit=0", 400, "limit 0 is out of range 1-500"),
            ("/api/images?sort=random", 400, "sort must be one of"),
            ("/api/occlusion?image=0&window=29", 400, "window 29 is out of range 1-28"),
            ("/api/occlusion?image=0&stride=0", 400, "stride 0 is out of range"),
            ("/api/occlusion?image=0&target=10", 400, "target 10 is out of range 0-9"),
            ("/api/top?layer=fc2", 400, "no feature maps"),
            ("/api/model?checkpoint=1", 400, "unknown parameter"),
            ("/api/forward?image=0&checkpoint=2", 400, "checkpoint 2 is out of range 0-1"),
            ("/etc/passwd", 404, "no such page"),
            ("/api/../../etc/passwd", 404, "no such page"),
        ]
        for (target, status, needle) in bad {
            let response = try client.send(target)
            XCTAssertEqual(response.status, status, target)
            XCTAssertEqual(response.headers["content-type"], "application/json", target)
            let error = try JSONDecoder().decode([String: String].self, from: Data(response.body))["error"] ?? ""
            XCTAssertTrue(error.contains(needle), "\(target): \(error)")
        }
        XCTAssertEqual(try client.send("/api/model", method: "POST").status, 405)
        XCTAssertEqual(try client.send("/api/model", host: "attacker.example:\(client.port)").status, 403, "DNS rebinding: a foreign Host is refused")
        XCTAssertEqual(try client.send("/api/model", host: "localhost:1").status, 403, "another port is another origin")
        XCTAssertEqual(try client.send("/api/model", host: "localhost:\(client.port)").status, 200)
        XCTAssertEqual(try client.send("/api/model").status, 200, "the server still serves")
    }

    func testTheProjectionNPYIsWhatProjectWrites() throws {
        let (port, folder) = try server()
        let client = LoopbackClient(port: port)
        for (arguments, query) in [(["--channel", "3"], "channel=3&method=deconvnet"),
                                   (["--channel", "5", "--position", "2,9", "--method", "guided"], "channel=5&y=2&x=9&method=guided"),
                                   (["--channel", "0", "--position", "7,7", "--method", "gradient"], "channel=0&y=7&x=7&method=gradient")] {
            let npy = folder + "/cli-\(UUID().uuidString).npy"
            let cli = try CLI.run(["project", "--checkpoint", Self.checkpoint, "--data", Self.fashion, "--split", "test", "--index", "17",
                                   "--layer", "conv2", "--out", folder + "/cli.png", "--npy", npy] + arguments)
            XCTAssertEqual(cli.status, 0, cli.stderr)
            let response = try client.send("/api/project?image=17&layer=conv2&\(query)&format=npy")
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.body, Array(try Data(contentsOf: URL(fileURLWithPath: npy))), query)
        }
    }

    func testUploadsAreCappedInBytesAndPixels() throws {
        let client = LoopbackClient(port: try server().port)
        let tooLong = try client.send("/api/upload", method: "POST", body: [UInt8](repeating: 0x89, count: ExploreSession.maximumUploadBytes + 1))
        XCTAssertEqual(tooLong.status, 413)
        let refused = try client.send("/api/upload", method: "POST", body: pngHeader(width: 4097, height: 4096))
        XCTAssertEqual(refused.status, 400)
        XCTAssertTrue(refused.text.contains("more than the 16777216"), refused.text)
        XCTAssertEqual(try client.send("/api/upload", method: "POST", body: Array("not an image".utf8)).status, 400)
        XCTAssertEqual(try client.send("/api/upload", method: "POST").status, 400)

        let png = try Image(width: 40, height: 30, channels: 3, pixels: (0..<3600).map { UInt8($0 % 251) }).pngData()
        let accepted = try client.send("/api/upload", method: "POST", body: Array(png))
        XCTAssertEqual(accepted.status, 200, accepted.text)
        let upload = try JSONSerialization.jsonObject(with: Data(accepted.body)) as? [String: Any] ?? [:]
        let id = upload["upload"] as? String ?? ""
        XCTAssertTrue((upload["conversion"] as? String ?? "").contains("40x30 RGB → BT.601 grayscale"), accepted.text)
        let forward = try client.send("/api/forward?upload=\(id)")
        XCTAssertEqual(forward.status, 200, forward.text)
        XCTAssertEqual(try client.send("/api/project?upload=\(id)&layer=conv1&channel=0").status, 200)
    }

    /// A bounded load: 8 clients, 40 requests each, over projections of many images, channels and
    /// methods; every answer must be the one the same request gets alone.
    func testConcurrentRequestsAreAllAnsweredRightly() throws {
        let port = try server().port
        let targets = (0..<320).map { i in
            "/api/project?image=\(i % 37)&layer=\(["conv1", "pool1", "conv2", "pool2"][i % 4])&channel=\(i % 29)&method=\(["deconvnet", "guided", "gradient"][i % 3])&format=npy"
        }
        let alone = LoopbackClient(port: port)
        let expected = try targets.map { try alone.send($0).body }
        XCTAssertTrue(expected.allSatisfy { $0.count == 128 + 28 * 28 * 4 })
        let lock = NSLock()
        nonisolated(unsafe) var wrong: [String] = []
        DispatchQueue.concurrentPerform(iterations: 8) { c in
            let client = LoopbackClient(port: port)
            for i in stride(from: c, to: targets.count, by: 8) {
                let response = try? client.send(targets[i])
                if response?.status != 200 || response?.body != expected[i] { lock.withLock { wrong.append(targets[i]) } }
            }
        }
        XCTAssertEqual(wrong, [], "answered wrongly under load")
    }

    func testTheTopNineIsCachedBesideTheCheckpoint() throws {
        let (port, folder) = try server()
        let client = LoopbackClient(port: port)
        var response = try client.send("/api/top?layer=pool2")
        let deadline = Date().addingTimeInterval(300)
        while response.status == 202, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            response = try client.send("/api/top?layer=pool2")
        }
        XCTAssertEqual(response.status, 200, response.text)
        let file = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("lenet5.safetensors.top9-L3-") }
        XCTAssertEqual(file.count, 1, "one cache file for pool2 (layer 3)")
        let cached = try JSONDecoder().decode(TopSearches.CacheFile.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/" + file[0])))
        XCTAssertEqual(cached.layer, "pool2")
        XCTAssertEqual(cached.channels.count, 64)
        XCTAssertTrue(cached.channels.allSatisfy { $0.count == 9 && zip($0, $0.dropFirst()).allSatisfy { $0.value >= $1.value } })
    }

    /// With the data set, Ctrl-C comes while the test split is still being classified in the background,
    /// which has to stop first (exiting inside OpenBLAS crashed).
    func testCtrlCStopsTheServerCleanly() throws {
        let data = FileManager.default.fileExists(atPath: Self.fashion) ? ["--data", Self.fashion] : []
        let (process, port) = try Self.startServer(["--checkpoint", Self.checkpoint] + data)
        XCTAssertEqual(try LoopbackClient(port: port).send("/api/model").status, 200)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 0)
        let rest = String(decoding: (process.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(rest.contains("explore: stopped"), rest)
    }

    func testABadHostOrPortIsRefused() throws {
        try assertCleanFailure(["explore", "--checkpoint", Self.checkpoint, "--host", "example.com", "--port", "0"], mentions: "not an IPv4 address", status: 1)
        try assertCleanFailure(["explore", "--checkpoint", Self.checkpoint, "--port", "70000"], mentions: "--port must be 0-65535", status: 64)
    }

    func testAnotherHostIsServedWithAWarning() throws {
        let (process, port) = try Self.startServer(["--checkpoint", Self.checkpoint, "--host", "0.0.0.0"], host: "0.0.0.0")
        defer { if process.isRunning { process.terminate() } }
        XCTAssertEqual(try LoopbackClient(port: port).send("/api/model").status, 200, "still serves")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let errors = String(decoding: (process.standardError as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(errors, "Warning: listening on 0.0.0.0, not loopback: anyone who can reach this address can use the page and its API\n")
    }

    /// The page in Debian's Chromium, driven by Playwright (Tests/browser/check_explore.py): a click on an
    /// image, a feature map and a unit, the projection's pixels against the API's PNG, the API's NPY
    /// against the CLI's, the keyboard, the top 9, occlusion and an upload; no console error. Screenshots
    /// stay in .build/artefacts/explore-browser.
    func testThePageInABrowser() throws {
        let (port, folder) = try server()
        try Python.require("playwright, PIL")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true: /usr/bin/chromium is missing") }
            throw XCTSkip("chromium is not installed (apt-get install chromium)")
        }
        let npy = folder + "/browser-cli.npy"
        let cli = try CLI.run(["project", "--checkpoint", Self.checkpoint, "--data", Self.fashion, "--split", "test", "--index", "0",
                               "--layer", "conv2", "--channel", "3", "--position", "5,6", "--out", folder + "/browser-cli.png", "--npy", npy])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        let upload = folder + "/upload.png"
        try Image(width: 40, height: 30, channels: 3, pixels: (0..<3600).map { UInt8($0 * 7 % 256) }).writePNG(toFile: upload)
        let artefacts = Python.packageRoot.appendingPathComponent(".build/artefacts/explore-browser").path
        try? FileManager.default.removeItem(atPath: artefacts)
        try FileManager.default.createDirectory(atPath: artefacts, withIntermediateDirectories: true)
        let (status, output) = Python.run([Python.packageRoot.appendingPathComponent("Tests/browser/check_explore.py").path,
                                           "http://127.0.0.1:\(port)/", artefacts, npy, upload])
        XCTAssertEqual(status, 0, output)
        print("explore page: \(output.trimmingCharacters(in: .whitespacesAndNewlines)); screenshots in \(artefacts)")
    }
}

/// A PNG file that declares `width x height` gray pixels and holds none: the signature, a valid IHDR,
/// an empty IDAT and IEND, enough for a decoder to refuse the size before it reads any pixel.
func pngHeader(width: Int, height: Int) -> [UInt8] {
    func be32(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in body {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return be32(data.count) + body + be32(Int(~crc))
    }
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(width) + be32(height) + [8, 0, 0, 0, 0])
        + chunk("IDAT", []) + chunk("IEND", [])
}
