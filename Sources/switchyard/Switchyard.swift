import ArgumentParser

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A multi-model failover router for LLM APIs.",
        subcommands: [ServeCommand.self, CheckCommand.self, DemoCommand.self, UpstreamSimCommand.self]
    )
}
