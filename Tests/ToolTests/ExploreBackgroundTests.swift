import Deconv
import Foundation
import Net
import TestSupport
import XCTest
@testable import Tool

/// The explorer's background work in the process: the parts of a split, the priority they run at,
/// stopping, the image list before the test split is classified, and a top-9 search in parts.
final class ExploreBackgroundTests: XCTestCase {
    func testASplitRunsEveryPartOnceBelowTheCallersPriorityThenReports() {
        let background = BackgroundWork()
        let lock = NSLock()
        nonisolated(unsafe) var parts: [Int] = [], niceness: Set<Int32> = [], reports: [Bool] = []
        background.split(97, threads: 3, { part in
            errno = 0
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            lock.withLock {
                parts.append(part)
                niceness.insert(nice)
            }
        }, then: { finished in lock.withLock { reports.append(finished) } })
        background.waitUntilDone()
        XCTAssertEqual(parts.sorted(), Array(0..<97), "every part once")
        XCTAssertEqual(reports, [true], "then(finished) once, after the last part")
        #if os(Linux)
        XCTAssertEqual(niceness, [BackgroundWork.niceness], "the parts run niced")
        XCTAssertEqual(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), 0, "the caller's thread keeps its priority")
        #endif
    }

    func testStoppingEndsASplitAfterItsCurrentParts() {
        let background = BackgroundWork()
        let lock = NSLock()
        nonisolated(unsafe) var ran = 0, reports: [Bool] = []
        let started = DispatchSemaphore(value: 0)
        background.split(10_000, threads: 2, { part in
            if part == 0 { started.signal() }
            Thread.sleep(forTimeInterval: 0.001)
            lock.withLock { ran += 1 }
        }, then: { finished in lock.withLock { reports.append(finished) } })
        started.wait()
        background.stop()
        XCTAssertLessThan(ran, 10_000)
        XCTAssertEqual(reports, [false], "then(false): cut short")
    }

    /// With the background stopped before it classified the split, a page in index order is still
    /// answered (its images classified on demand, as the model's forward pass says), while a filter waits.
    func testAPageInIndexOrderNeedsOnlyItsOwnImages() async throws {
        let fashion = ExploreTests.fashion
        guard FileManager.default.fileExists(atPath: fashion) else { throw XCTSkip("Fashion-MNIST is not installed") }
        let folder = NSTemporaryDirectory() + "deconvnet-explore-list-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ExploreTests.writeEarlierSnapshot(to: folder + "/epoch1.safetensors")
        // the snapshot is classified after --checkpoint: here never, as the background stops at once
        let session = try ExploreSession(checkpoint: ExploreTests.checkpoint, others: [folder + "/epoch1.safetensors"], data: fashion)
        session.background.stop()
        let api = ExploreAPI(session: session)
        func get(_ path: String, _ query: [(String, String)]) async -> APIResponse {
            await api.respond(method: "GET", path: path, query: query.map { (name: $0.0, value: $0.1) }) { _ throws(APIError) in Data() }
        }
        let waiting = await get("/api/images", [("sort", "loss")])
        XCTAssertEqual(waiting.status, 202, "a sort needs every verdict")
        let progress = try JSONSerialization.jsonObject(with: waiting.body) as? [String: Any] ?? [:]
        XCTAssertEqual(progress["total"] as? Int, 10_000)
        XCTAssertLessThan(progress["done"] as? Int ?? 10_000, 10_000, "the background stopped before the end")

        let page = await get("/api/images", [("offset", "9950"), ("limit", "60")])
        XCTAssertEqual(page.status, 200)
        let list = try JSONSerialization.jsonObject(with: page.body) as? [String: Any] ?? [:]
        let images = list["images"] as? [[String: Any]] ?? []
        XCTAssertEqual(list["total"] as? Int, 10_000)
        XCTAssertEqual(images.map { $0["image"] as? Int ?? -1 }, Array(9950..<10_000), "the page's own images, the last 50")
        for entry in images.prefix(3) {
            let forward = await get("/api/forward", [("image", "\(entry["image"] as! Int)")])
            let probabilities = (try JSONSerialization.jsonObject(with: forward.body) as? [String: Any])?["probabilities"] as? [Double] ?? []
            let predicted = probabilities.indices.max { probabilities[$0] < probabilities[$1] }
            XCTAssertEqual(entry["predicted"] as? Int, predicted)
            XCTAssertEqual(entry["confidence"] as? Double ?? 0, probabilities[predicted ?? 0], accuracy: 1e-5)
        }
        let again = await get("/api/images", [("offset", "9950"), ("limit", "60")])
        XCTAssertEqual(again.body, page.body, "each image is classified once")
        XCTAssertEqual(session.defaultCheckpoint, 1, "the snapshot of epoch 1 sorts first")
        let snapshot = await get("/api/images", [("checkpoint", "0"), ("offset", "120"), ("limit", "5")])
        XCTAssertEqual(snapshot.status, 200, "a snapshot's page before its turn in the background")
        let snapshotImages = (try JSONSerialization.jsonObject(with: snapshot.body) as? [String: Any])?["images"] as? [[String: Any]] ?? []
        XCTAssertEqual(snapshotImages.map { $0["image"] as? Int ?? -1 }, Array(120..<125))
        let filtered = await get("/api/images", [("checkpoint", "0"), ("show", "wrong")])
        XCTAssertEqual(filtered.status, 202)
    }

    /// A search in parts that finish in any order finds what one search over the split finds.
    func testATopNineSearchInPartsIsTheSearchOfTheWholeSplit() throws {
        let fashion = ExploreTests.fashion
        guard FileManager.default.fileExists(atPath: fashion) else { throw XCTSkip("Fashion-MNIST is not installed") }
        let folder = NSTemporaryDirectory() + "deconvnet-explore-top-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: ExploreTests.checkpoint, toPath: folder + "/lenet5.safetensors")
        let checkpoint = try ExploreCheckpoint(path: folder + "/lenet5.safetensors")
        let test = slice(try loadSplit(fashion, .test, for: checkpoint.model), 0..<2_500)  // 3 parts, the last 500 images
        let searches = TopSearches(checkpoints: [checkpoint], test: test, background: BackgroundWork())
        let layer = 2  // conv2
        var state = searches.state(checkpoint: 0, layer: layer)
        let deadline = Date().addingTimeInterval(300)
        while case .running = state, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            state = searches.state(checkpoint: 0, layer: layer)
        }
        guard case .ready(let found) = state else { return XCTFail("the search did not finish: \(state)") }
        let projector = try Projector(model: checkpoint.model)
        assertSameWinners(found, projector.topActivations(in: test, layer: layer, channels: Array(0..<64), k: TopSearches.k))
    }

    /// Each channel's winners are the same images and units with the same activations, to rounding: a
    /// part's batches hold other images than the whole split's, so OpenBLAS multiplies matrices of other
    /// sizes and may round the last bit apart (as its Haswell kernels do); two winners within rounding of
    /// each other may trade places.
    private func assertSameWinners(_ found: [[TopActivation]], _ expected: [[TopActivation]], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(found.map(\.count), expected.map(\.count), file: file, line: line)
        for (channel, (a, b)) in zip(found, expected).enumerated() {
            let tolerance: (Float) -> Float = { 1e-5 * max(abs($0), 1e-3) }
            for (rank, (x, y)) in zip(a, b).enumerated() {
                XCTAssertEqual(x.value, y.value, accuracy: tolerance(y.value), "channel \(channel) rank \(rank)", file: file, line: line)
                let tie = b.contains { $0.image == x.image && $0.unit == x.unit && abs($0.value - y.value) <= tolerance(y.value) }
                XCTAssertTrue(x.image == y.image && x.unit == y.unit || tie, "channel \(channel) rank \(rank): \(x) against \(y)", file: file, line: line)
            }
        }
    }
}
