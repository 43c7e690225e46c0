import ArgumentParser
import Foundation
import Net

/// `deconvnet explore`: a live page in the browser over one model (or its snapshots), its test images,
/// and each layer and unit, answered by the JSON/PNG/NPY API that `ExploreAPI` serves.
struct ExploreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "Serve a live page to click through images, layers and units (projections, top-9, occlusion).",
        discussion: """
            Listens on 127.0.0.1 and prints the page's URL on one line; Ctrl-C stops it. The page and its \
            API need nothing from the network. With --data, the test split is browsable and each layer's \
            top-9 is searched on first use and cached beside the checkpoint; with --checkpoints, a slider \
            moves over the snapshots (sorted by epoch). The API is described in the README.
            """)

    @OptionGroup var model: CheckpointOptions

    @Option(help: ArgumentHelp("A data set directory whose test split the page browses.", valueName: "dir"))
    var data: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("More snapshots of the same model, for the epoch slider.", valueName: "files"))
    var checkpoints: [String] = []

    @Option(help: "TCP port (0: any free port).")
    var port: Int = 8765

    @Option(help: ArgumentHelp("IPv4 address to listen on; anything but 127.0.0.1 exposes the model to the network.", valueName: "address"))
    var host = "127.0.0.1"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535, not \(port)") }
    }

    func run() throws {
        let session = try ExploreSession(checkpoint: model.checkpoint, others: checkpoints, data: data)
        let server = try ExploreServer(ExploreAPI(session: session), host: host, port: UInt16(port))
        if host != "127.0.0.1" {
            printError("Warning: listening on \(host), not loopback: anyone who can reach this address can use the page and its API")
        }
        StopSignal.install()
        let listening = try waitFor { try await server.start() }
        print("explore: http://\(host):\(listening)/ (Ctrl-C stops)")
        fflush(stdout)
        StopSignal.wait()
        waitFor { await server.stop() }
        session.background.stop()
        print("explore: stopped")
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, waited for by the thread that will stop the server. Their handler, set
/// with `sigaction` before the server starts, posts a semaphore, which is async-signal-safe and works on
/// whichever thread the kernel hands the signal to. (A dispatch signal source, used before, is registered
/// later on dispatch's own thread, after the signal was set to be ignored, and on Linux reads a signalfd;
/// with it, one CI run's Ctrl-C left the server waiting for 25 minutes.)
enum StopSignal {
    /// Posted once per signal.
    nonisolated(unsafe) private static let posted: UnsafeMutablePointer<sem_t> = {
        let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
        return semaphore
    }()

    /// Installs the handler for SIGINT and SIGTERM (system calls it interrupts restart).
    static func install() {
        _ = posted  // made before a signal can need it
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in _ = sem_post(StopSignal.posted) }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        for number in [SIGINT, SIGTERM] { sigaction(number, &action, nil) }
    }

    /// Blocks until one of the signals has come.
    static func wait() {
        while sem_wait(posted) != 0 && errno == EINTR {}
    }
}

/// Runs `work` on Swift's concurrency threads and blocks the calling thread until it is done: the
/// bridge from a synchronous command to FlyingFox's async API.
func waitFor<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, Error>?
    Task {
        do { result = .success(try await work()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result!.get()
}

func waitFor(_ work: @escaping @Sendable () async -> Void) {
    _ = try! waitFor { () async throws -> Bool in
        await work()
        return true
    }
}
