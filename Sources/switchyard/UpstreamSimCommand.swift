import ArgumentParser
import SwitchyardCore
import UpstreamSim

#if canImport(Glibc)
import Glibc
#endif

struct UpstreamSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream-sim",
        abstract: "Run a fake Anthropic Messages API server that follows a fault script.",
        discussion: """
            Steps are taken one per request, in order: STEP, STEP*N (N times) or STEP* (forever); after
            the last step requests are answered ok. A request may choose its own fault with the
            x-sim-fault header. Steps: ok, ok(events=20,interval=50ms), any status such as 500, 529,
            429(retry-after=2), 503(should-retry=false), slow(2s), reset, hang, sse-error(N),
            sse-error(N,api_error), cut(N), stall(N), invalid-json, huge(80MiB), malformed-sse,
            endless-headers.
            """
    )

    @Option(name: .long, help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:9001"

    @Option(name: .long, help: "Fault script, e.g. \"ok*5,500*3,529,ok*\".")
    var script = ""

    @Option(name: .long, help: "Name used in request ids and messages.")
    var name = "sim"

    func run() async throws {
        guard let address = HostPort.parse(listen) else {
            throw ValidationError("invalid --listen '\(listen)' (expected HOST:PORT)")
        }
        let parsed: FaultScript
        do {
            parsed = try FaultScript.parse(script)
        } catch {
            throw ValidationError(error.description)
        }
        let simulator = UpstreamSimulator(name: name, script: parsed)
        let port = try await simulator.start(host: address.host, port: address.port)
        printError("upstream-sim '\(name)' listening on \(address.host):\(port) with script \"\(script)\"")
        await waitForTermination()
        await simulator.stop()
    }
}
