import AWSWire
import ArgumentParser
import Foundation
import SwitchyardCore
import UpstreamSim

#if canImport(Glibc)
import Glibc
#endif

struct UpstreamSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream-sim",
        abstract: "Run a fake model API server (Anthropic, Bedrock, Vertex or OpenAI) that follows a fault script.",
        discussion: """
            Steps are taken one per request, in order: STEP, STEP*N (N times) or STEP* (forever); after
            the last step requests are answered ok. A request may choose its own fault with the
            x-sim-fault header. Steps: ok, ok(events=20,interval=50ms), any status such as 500, 529,
            429(retry-after=2), 503(should-retry=false), slow(2s), reset, hang, sse-error(N),
            sse-error(N,api_error), cut(N), stall(N), invalid-json, not-a-message, huge(80MiB), malformed-sse,
            endless-headers, error(NAME,STATUS) (a platform error by name, e.g. error(ThrottlingException,429)),
            untyped(STATUS) (the platform's error shape without its type), html(STATUS) and empty(STATUS)
            (a gateway's HTML page, an empty body), exception(N,NAME) (a stream exception after N events), crc(N) and truncate(N) (a broken
            event-stream frame after N events), quota and context-length (OpenAI's insufficient_quota 429 and
            context_length_exceeded 400; elsewhere error(insufficient_quota,429) and error(context_length_exceeded,400)).

            Anthropic mode reports rate limits on every Messages answer, as Anthropic does:
            anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}, from
            buckets with a 60 s window (requests count down by one per answer, tokens by its usage; limits
            large enough to be met only on purpose). An empty requests bucket answers 429 with retry-after
            until its reset. The step drain(KIND=N|P%,limit=N,reset=D) sets bucket KIND (requests, tokens,
            input-tokens, output-tokens) to N, or P% of its limit, remaining, optionally with a new limit and
            a reset D from now, and answers ok: drain(requests=3%,reset=5s) shows a model nearly out of requests.

            --platform bedrock speaks AWS Bedrock's runtime API (SigV4-signed requests, event-stream
            frames, x-amzn-errortype errors) and serves a container credentials endpoint
            (GET /v2/credentials/…) and STS AssumeRoleWithWebIdentity (POST /). Signatures are
            checked for --aws-access-key-id with the secret in $SIM_AWS_SECRET_ACCESS_KEY, and for
            the temporary credentials it issued. --platform vertex speaks Vertex AI's Claude
            endpoints (:rawPredict, :streamRawPredict, count-tokens:rawPredict) with Google errors,
            checks bearer tokens, and serves a token_uri (POST /token) and the metadata server's
            token path. --platform openai speaks OpenAI's Chat Completions API (POST /v1/chat/completions,
            Azure's POST /openai/deployments/NAME/chat/completions?api-version=…, GET /v1/models): JSON
            or data: chunks ending in [DONE], one tool call when tools are offered and the user spoke last,
            OpenAI's error envelope (a 529 step answers 503, OpenAI's overload); with --api-key it checks
            Authorization: Bearer and Azure's api-key header. Stream steps count chunks, the role chunk first.
            """
    )

    @Option(name: .long, help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:9001"

    @Option(name: .long, help: "Fault script, e.g. \"ok*5,500*3,529,ok*\".")
    var script = ""

    @Option(name: .long, help: "Name used in request ids and messages.")
    var name = "sim"

    @Option(name: .long, help: "The platform protocol to speak: anthropic, bedrock, vertex or openai.")
    var platform = "anthropic"

    @Option(name: .long, help: "Bedrock: an access key id whose signatures are accepted (secret in $SIM_AWS_SECRET_ACCESS_KEY).")
    var awsAccessKeyId: String?

    @Option(name: .long, help: "Bedrock: the region signatures must name.")
    var region = "us-east-1"

    @Option(name: .long, help: "Bedrock: run the sim's clock this many seconds ahead (clock-skew drills).")
    var clockOffset: Int64 = 0

    @Option(name: .long, help: "Vertex: a bearer token accepted besides the ones the sim issues.")
    var acceptToken: [String] = []

    @Flag(name: .long, help: "Vertex: do not check bearer tokens.")
    var noTokenCheck = false

    @Option(name: .long, help: "OpenAI: an API key accepted (Bearer or api-key); without any, keys are not checked.")
    var apiKey: [String] = []

    @Option(name: .long, help: "Content deltas of the streams fault steps send (sse-error, cut, stall, ...).")
    var faultDeltas = 5

    @Option(name: .long, help: "Pause between the events of those streams, e.g. 5ms.")
    var faultInterval = "0ms"

    @Option(name: .long, help: "Lifetime in seconds of the credentials and tokens the sim issues.")
    var issuedLifetime: Int64 = 3600

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
        guard let simPlatform = SimPlatform(rawValue: platform) else {
            throw ValidationError("invalid --platform '\(platform)' (expected anthropic, bedrock, vertex or openai)")
        }
        var options = SimPlatformOptions(
            region: region, clockOffsetSeconds: clockOffset, issuedLifetimeSeconds: issuedLifetime, checkTokens: !noTokenCheck,
            acceptedTokens: Set(acceptToken), acceptedKeys: Set(apiKey)
        )
        if let awsAccessKeyId {
            guard let secret = ProcessInfo.processInfo.environment["SIM_AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw ValidationError("--aws-access-key-id needs the secret in $SIM_AWS_SECRET_ACCESS_KEY")
            }
            options.awsCredentials = [AWSCredentials(accessKeyID: awsAccessKeyId, secretAccessKey: secret)]
        }
        let simulator = UpstreamSimulator(name: name, script: parsed, platform: simPlatform, options: options)
        guard let interval = FaultScript.parseDuration(faultInterval) else {
            throw ValidationError("invalid --fault-interval '\(faultInterval)' (expected e.g. 5ms)")
        }
        simulator.faultStream = (faultDeltas, interval)
        let port = try await simulator.start(host: address.host, port: address.port)
        printError("upstream-sim '\(name)' (\(platform)) listening on \(address.host):\(port) with script \"\(script)\"")
        await waitForTermination()
        await simulator.stop()
    }
}
