import ArgumentParser
import NIOCore
import NIOPosix

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A multi-model failover router for LLM APIs.",
        subcommands: [ServeCommand.self, CheckCommand.self, DemoCommand.self, ReplayCommand.self, UpstreamSimCommand.self]
    )

    static func main() async {
        // Run Swift concurrency on NIO's event loops: a request's task then stays on the
        // threads that own the connections instead of hopping between the cooperative pool and
        // the event loops. Done before any other task starts.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
