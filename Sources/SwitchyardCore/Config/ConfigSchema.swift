import Yams

/// The routes.yaml schema: which keys exist, what they mean, and how they reference each other.
final class ConfigSchema {
    let reader: ConfigReader
    let environment: [String: String]
    let mode: ConfigLoader.Mode
    /// Names declared under each top-level section, valid or not, so that a broken definition is
    /// not also reported as an unknown reference everywhere it is used.
    private var declared: [String: [String]] = [:]
    /// Providers without `api_key_env`, which conflict with `clients:`.
    private var passThroughProviders: [(name: String, node: Node)] = []

    init(reader: ConfigReader, environment: [String: String], mode: ConfigLoader.Mode) {
        self.reader = reader
        self.environment = environment
        self.mode = mode
    }

    func read(_ root: Node, source: String) -> SwitchyardConfig? {
        rejectLiteralSecrets(root, path: "")
        let top = ["version", "server", "clients", "providers", "models", "defaults", "routes", "logging", "batches", "telemetry", "fleet"]
        guard let fields = reader.fields(root, path: "", known: top) else { return nil }
        for section in ["providers", "models", "routes"] {
            if let node = fields[section], case .mapping(let mapping) = node {
                declared[section] = mapping.compactMap { $0.key.scalar?.string }
            }
        }

        if let version = fields.required("version") {
            if let number = reader.int(version, path: "version", min: 1), number != 1 {
                reader.report("unsupported version \(number) (this Switchyard reads version 1)", at: version, path: "version")
            }
        }
        let defaults = fields["defaults"].flatMap { readDefaults($0, path: "defaults") } ?? (RetryPolicy.defaults, BreakerPolicy.defaults)
        let providers = fields.required("providers").map { readProviders($0) } ?? []
        let models = fields.required("models").map { readModels($0, providers: providers, breaker: defaults.breaker) } ?? []
        let routes = fields.required("routes").map { readRoutes($0, models: models, retry: defaults.retry) } ?? []
        let clients = fields["clients"].map { readClients($0, routes: routes) } ?? []
        let server = fields["server"].map { readServer($0) } ?? ServerSettings.defaults
        let logging = fields["logging"].map { readLogging($0) } ?? LoggingSettings.defaults
        let batches = fields["batches"].map { readBatches($0) }
        let telemetry = fields["telemetry"].flatMap { readTelemetry($0) }
        let fleet = fields["fleet"].flatMap { readFleet($0, batches: batches) }

        if !clients.isEmpty {
            for (provider, node) in passThroughProviders {
                reader.report(
                    "has no api_key_env, so callers' own keys would be passed through, but `clients:` makes callers present "
                        + "Switchyard keys; set api_key_env for this provider or remove `clients:`",
                    at: node, path: "providers.\(provider)"
                )
            }
        }
        guard !reader.hasErrors else { return nil }
        return SwitchyardConfig(
            server: server, clients: clients, providers: providers, models: models, routes: routes, logging: logging, batches: batches,
            telemetry: telemetry, fleet: fleet, source: source
        )
    }

    // MARK: Sections

    private func readDefaults(_ node: Node, path: String) -> (retry: RetryPolicy, breaker: BreakerPolicy)? {
        guard let fields = reader.fields(node, path: path, known: ["breaker", "retry"]) else { return nil }
        let breaker = fields["breaker"].flatMap { readBreaker($0, path: fields.path("breaker"), base: .defaults) } ?? .defaults
        let retry = fields["retry"].flatMap { readRetry($0, path: fields.path("retry"), base: .defaults) } ?? .defaults
        return (retry, breaker)
    }

    private func readProviders(_ node: Node) -> [ProviderSpec] {
        var providers: [ProviderSpec] = []
        let entries = reader.namedEntries(node, path: "providers")
        if entries.isEmpty, case .mapping = node {
            reader.report("at least one provider is required", at: node, path: "providers")
        }
        let common = ["type", "base_url", "timeouts", "max_connections", "queue_timeout", "tls", "proxy", "proxy_auth_env"]
        for (name, _, value) in entries {
            let path = "providers.\(name)"
            // The keys a provider may have depend on its type: read the type first.
            let kind = Self.scalar(named: "type", in: value).flatMap(Platforms.kind(named:))
            let platformKeys = kind.map { $0.configKeys } ?? Platforms.all.flatMap { $0.configKeys }
            guard let fields = reader.fields(value, path: path, known: common + platformKeys.filter { !common.contains($0) }) else { continue }
            if let typeNode = fields.required("type"), let text = reader.string(typeNode, path: fields.path("type")), kind == nil {
                reader.report(
                    "unknown provider type '\(text)' (expected one of: \(Platforms.typeNames.joined(separator: ", ")))", at: typeNode,
                    path: fields.path("type")
                )
            }
            var baseURL: UpstreamURL?
            if let urlNode = fields["base_url"], let text = reader.string(urlNode, path: fields.path("base_url")) {
                if let parsed = UpstreamURL.parse(text) {
                    baseURL = parsed
                } else {
                    reader.report("invalid URL '\(text)' (expected http:// or https:// with a host)", at: urlNode, path: fields.path("base_url"))
                }
            }
            var timeouts = UpstreamTimeouts.defaults
            if let timeoutNode = fields["timeouts"],
                let timeoutFields = reader.fields(timeoutNode, path: fields.path("timeouts"), known: ["connect", "first_byte", "idle"])
            {
                if let value = positiveDuration(timeoutFields, "connect") { timeouts.connect = value }
                if let value = positiveDuration(timeoutFields, "first_byte") { timeouts.firstByte = value }
                if let value = positiveDuration(timeoutFields, "idle") { timeouts.idle = value }
            }
            let maxConnections =
                fields["max_connections"].flatMap { reader.int($0, path: fields.path("max_connections"), min: 1, max: 100_000) }
                ?? ProviderSpec.defaultMaxConnections
            let queueTimeout = positiveDuration(fields, "queue_timeout") ?? ProviderSpec.defaultQueueTimeout
            let trust = readTrust(fields)
            guard let kind else { continue }
            let context = ProviderConfigContext(
                reader: reader, providerName: name, environment: environment, mode: mode,
                secret: { [unowned self] name, node, path in secret(named: name, node: node, path: path) },
                notePassThrough: { [unowned self] in passThroughProviders.append((name, value)) }
            )
            guard let settings = kind.readSettings(fields, context: context) else { continue }
            let url = baseURL ?? settings.defaultBaseURL
            let proxy = readProxy(fields, upstream: url)
            providers.append(
                ProviderSpec(
                    name: name, platform: kind.platform, baseURL: url, timeouts: timeouts, maxConnections: maxConnections,
                    queueTimeout: queueTimeout, trust: trust, proxy: proxy, proxyEnvironment: ProxyEnvironment(environment), settings: settings
                )
            )
        }
        return providers
    }

    /// A plain scalar value of a mapping, without reporting anything (to choose how to read the rest).
    private static func scalar(named key: String, in node: Node) -> String? {
        guard case .mapping(let mapping) = node else { return nil }
        for (keyNode, valueNode) in mapping where keyNode.scalar?.string == key {
            return valueNode.scalar?.string
        }
        return nil
    }

    private func readModels(_ node: Node, providers: [ProviderSpec], breaker defaultBreaker: BreakerPolicy) -> [ModelSpec] {
        var models: [ModelSpec] = []
        let providerNames = providers.map(\.name)
        let declaredProviders = declaredNames(of: "providers")
        for (name, _, value) in reader.namedEntries(node, path: "models") {
            let path = "models.\(name)"
            guard let fields = reader.fields(value, path: path, known: ["provider", "model", "breaker"]) else { continue }
            var provider: String?
            if let providerNode = fields.required("provider"), let text = reader.string(providerNode, path: fields.path("provider")) {
                if providerNames.contains(text) {
                    provider = text
                } else if !declaredProviders.contains(text) {
                    reader.report(
                        "unknown provider '\(text)' (known: \(declaredProviders.joined(separator: ", ")))", at: providerNode,
                        path: fields.path("provider")
                    )
                }
            }
            let upstream = fields.required("model").flatMap { reader.string($0, path: fields.path("model")) }
            if let upstream, upstream.isEmpty {
                reader.report("must not be empty", at: fields["model"], path: fields.path("model"))
            }
            let breaker = fields["breaker"].flatMap { readBreaker($0, path: fields.path("breaker"), base: defaultBreaker) } ?? defaultBreaker
            if let provider, let upstream, !upstream.isEmpty {
                models.append(ModelSpec(name: name, provider: provider, upstreamModel: upstream, breaker: breaker))
            }
        }
        if models.isEmpty, !reader.hasErrors {
            reader.report("at least one model is required", at: node, path: "models")
        }
        return models
    }

    private func readRoutes(_ node: Node, models: [ModelSpec], retry defaultRetry: RetryPolicy) -> [RouteSpec] {
        var routes: [RouteSpec] = []
        let declaredModels = declaredNames(of: "models")
        var claimedNames: [String: String] = [:]  // route name or alias -> the route that claims it
        let entries = reader.namedEntries(node, path: "routes")
        for entry in entries {
            claimedNames[entry.name] = entry.name
        }
        if entries.isEmpty, case .mapping = node {
            reader.report("at least one route is required", at: node, path: "routes")
        }
        for (name, _, value) in entries {
            let path = "routes.\(name)"
            let known = ["models", "aliases", "strategy", "when_all_unavailable", "retry", "stream_recovery", "headroom", "retry_budget"]
            guard let fields = reader.fields(value, path: path, known: known) else { continue }
            var modelNames: [String] = []
            if let listNode = fields.required("models"), let list = reader.stringList(listNode, path: fields.path("models")) {
                if list.isEmpty {
                    reader.report("a route needs at least one model", at: listNode, path: fields.path("models"))
                }
                for (index, item) in list.enumerated() {
                    let itemPath = "\(fields.path("models"))[\(index)]"
                    if !declaredModels.contains(item.value) {
                        reader.report(
                            "unknown model '\(item.value)' (known: \(declaredModels.joined(separator: ", ")))", at: item.node, path: itemPath
                        )
                    } else if modelNames.contains(item.value) {
                        reader.report("model '\(item.value)' is listed twice", at: item.node, path: itemPath)
                    } else {
                        modelNames.append(item.value)
                    }
                }
            }
            var aliases: [String] = []
            if let aliasNode = fields["aliases"], let list = reader.stringList(aliasNode, path: fields.path("aliases")) {
                for (index, item) in list.enumerated() {
                    let itemPath = "\(fields.path("aliases"))[\(index)]"
                    if let owner = claimedNames[item.value] {
                        let what = owner == item.value ? "the name of route '\(owner)'" : "already an alias of route '\(owner)'"
                        reader.report("alias '\(item.value)' is \(what)", at: item.node, path: itemPath)
                    } else if item.value.isEmpty {
                        reader.report("alias must not be empty", at: item.node, path: itemPath)
                    } else {
                        claimedNames[item.value] = name
                        aliases.append(item.value)
                    }
                }
            }
            var strategy = SelectionStrategy.priority
            if let strategyNode = fields["strategy"], let text = reader.string(strategyNode, path: fields.path("strategy")) {
                if let value = SelectionStrategy(rawValue: text) {
                    strategy = value
                } else if ["weighted", "least_latency"].contains(text) {
                    reader.report("strategy '\(text)' is not available yet (supported: priority)", at: strategyNode, path: fields.path("strategy"))
                } else {
                    reader.report("unknown strategy '\(text)' (supported: priority)", at: strategyNode, path: fields.path("strategy"))
                }
            }
            let unavailable =
                fields["when_all_unavailable"].flatMap {
                    reader.oneOf($0, path: fields.path("when_all_unavailable"), UnavailablePolicy.self, allowed: [.probe, .reject])
                } ?? .probe
            let retry = fields["retry"].flatMap { readRetry($0, path: fields.path("retry"), base: defaultRetry) } ?? defaultRetry
            let recovery = fields["stream_recovery"].flatMap { readStreamRecovery($0, path: fields.path("stream_recovery")) }
            let headroom = fields["headroom"].flatMap { readHeadroom($0, path: fields.path("headroom")) } ?? .defaults
            let budget = fields["retry_budget"].flatMap { readRetryBudget($0, path: fields.path("retry_budget")) }
            if !modelNames.isEmpty, modelNames.allSatisfy({ name in models.contains { $0.name == name } }) {
                routes.append(
                    RouteSpec(
                        name: name, models: modelNames, aliases: aliases, strategy: strategy, whenAllUnavailable: unavailable, retry: retry,
                        streamRecovery: recovery ?? nil, headroom: headroom, retryBudget: budget
                    )
                )
            }
        }
        return routes
    }

    private func readClients(_ node: Node, routes: [RouteSpec]) -> [ClientCredential] {
        guard case .sequence(let sequence) = node else {
            reader.report("expected a list of clients, found \(node.shapeDescription)", at: node, path: "clients")
            return []
        }
        let declaredRoutes = declaredNames(of: "routes")
        var clients: [ClientCredential] = []
        var names: Set<String> = []
        var keyOwners: [String: String] = [:]
        for (index, item) in sequence.enumerated() {
            let path = "clients[\(index)]"
            guard let fields = reader.fields(item, path: path, known: ["name", "key_env", "routes"]) else { continue }
            let name = fields.required("name").flatMap { reader.string($0, path: fields.path("name")) }
            if let name, !names.insert(name).inserted {
                reader.report("client name '\(name)' is used twice", at: fields["name"], path: fields.path("name"))
            }
            var key: String?
            var keyEnv: String?
            if let envNode = fields.required("key_env") {
                keyEnv = reader.string(envNode, path: fields.path("key_env"))
                key = keyEnv.flatMap { secret(named: $0, node: envNode, path: fields.path("key_env")) }
                if let key, !key.isEmpty, let name {
                    if let owner = keyOwners[key] {
                        reader.report("client '\(name)' has the same key as client '\(owner)'", at: envNode, path: fields.path("key_env"))
                    }
                    keyOwners[key] = name
                }
            }
            var allowed: Set<String>?
            if let routesNode = fields["routes"], let list = reader.stringList(routesNode, path: fields.path("routes")) {
                allowed = []
                for (offset, entry) in list.enumerated() {
                    if declaredRoutes.contains(entry.value) {
                        allowed?.insert(entry.value)
                    } else {
                        reader.report(
                            "unknown route '\(entry.value)' (known: \(declaredRoutes.joined(separator: ", ")))", at: entry.node,
                            path: "\(fields.path("routes"))[\(offset)]"
                        )
                    }
                }
            }
            if let name, let keyEnv, let key {
                clients.append(ClientCredential(name: name, keyEnv: keyEnv, key: key, allowedRoutes: allowed))
            }
        }
        return clients
    }

    private func readServer(_ node: Node) -> ServerSettings {
        let known = [
            "listen", "max_body", "request_timeout", "drain_timeout", "admin_token_env", "client_timeout", "idle_timeout",
            "max_header_size",
        ]
        var settings = ServerSettings.defaults
        guard let fields = reader.fields(node, path: "server", known: known) else { return settings }
        if let listen = fields["listen"].flatMap({ reader.parsed($0, path: fields.path("listen"), ConfigValues.hostPort) }) {
            settings.listen = listen
        }
        if let size = fields["max_body"].flatMap({ reader.parsed($0, path: fields.path("max_body"), ConfigValues.byteSize) }) {
            if size < 1 {
                reader.report("must be at least 1 byte", at: fields["max_body"], path: fields.path("max_body"))
            }
            settings.maxBody = size
        }
        if let value = positiveDuration(fields, "request_timeout") { settings.requestTimeout = value }
        if let value = duration(fields, "drain_timeout") { settings.drainTimeout = value }
        if let value = positiveDuration(fields, "client_timeout") { settings.clientTimeout = value }
        if let value = positiveDuration(fields, "idle_timeout") { settings.idleTimeout = value }
        if let size = fields["max_header_size"].flatMap({ reader.parsed($0, path: fields.path("max_header_size"), ConfigValues.byteSize) }) {
            if size < 1024 {
                reader.report("must be at least 1KiB", at: fields["max_header_size"], path: fields.path("max_header_size"))
            }
            settings.maxHeaderSize = size
        }
        if let envNode = fields["admin_token_env"], let name = reader.string(envNode, path: fields.path("admin_token_env")) {
            settings.adminTokenEnv = name
            settings.adminToken = secret(named: name, node: envNode, path: fields.path("admin_token_env"))
        }
        return settings
    }

    private func readBatches(_ node: Node) -> BatchSettings {
        var settings = BatchSettings.defaults
        let known = ["store", "store_password_env", "expires_after", "concurrency", "probe_grace", "max_backoff", "mode"]
        guard let fields = reader.fields(node, path: "batches", known: known) else { return settings }
        if let storeNode = fields["store"], let store = reader.string(storeNode, path: fields.path("store")) {
            if store.hasPrefix("sqlite:"), store.count > "sqlite:".count {
                settings.store = store
            } else if store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") {
                let authority = store.drop { $0 != "/" }.dropFirst(2).prefix { $0 != "/" }
                if let userInfo = authority.split(separator: "@").first, authority.contains("@"), userInfo.contains(":") {
                    reader.report(
                        "the password must not be written in routes.yaml; put it in an environment variable and name it with store_password_env",
                        at: storeNode, path: fields.path("store")
                    )
                } else {
                    settings.store = store
                }
            } else {
                reader.report(
                    "unknown store '\(store)' (expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE)", at: storeNode, path: fields.path("store")
                )
            }
        }
        if let envNode = fields["store_password_env"], let name = reader.string(envNode, path: fields.path("store_password_env")) {
            settings.storePasswordEnv = name
            settings.storePassword = secret(named: name, node: envNode, path: fields.path("store_password_env"))
        }
        if let value = positiveDuration(fields, "expires_after") { settings.expiresAfter = value }
        if let value = fields["concurrency"].flatMap({ reader.int($0, path: fields.path("concurrency"), min: 1, max: 4096) }) {
            settings.concurrency = value
        }
        if let value = duration(fields, "probe_grace") { settings.probeGrace = value }
        if let value = positiveDuration(fields, "max_backoff") { settings.maxBackoff = value }
        if let mode = fields["mode"].flatMap({ reader.oneOf($0, path: fields.path("mode"), BatchSettings.Mode.self, allowed: [.direct, .upstream]) }) {
            settings.mode = mode
        }
        return settings
    }

    private func readLogging(_ node: Node) -> LoggingSettings {
        var settings = LoggingSettings.defaults
        guard let fields = reader.fields(node, path: "logging", known: ["level", "audit"]) else { return settings }
        if let levelNode = fields["level"], let level = reader.string(levelNode, path: fields.path("level")) {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            if levels.contains(level) {
                settings.level = level
            } else {
                reader.report("unknown level '\(level)' (expected one of: \(levels.joined(separator: ", ")))", at: levelNode, path: fields.path("level"))
            }
        }
        if let auditNode = fields["audit"], let audit = reader.string(auditNode, path: fields.path("audit")) {
            if audit == "stdout" {
                settings.audit = .stdout
            } else if audit.isEmpty {
                reader.report("expected 'stdout' or a file path", at: auditNode, path: fields.path("audit"))
            } else {
                settings.audit = .file(audit)
            }
        }
        return settings
    }

    // MARK: Policies

    private func readBreaker(_ node: Node, path: String, base: BreakerPolicy) -> BreakerPolicy? {
        let known = ["failure_threshold", "open_for", "max_open_for", "half_open_probes", "failure_rate"]
        guard let fields = reader.fields(node, path: path, known: known) else { return nil }
        var policy = base
        if let value = fields["failure_threshold"].flatMap({ reader.int($0, path: fields.path("failure_threshold"), min: 1, max: 10_000) }) {
            policy.failureThreshold = value
        }
        if let value = positiveDuration(fields, "open_for") { policy.openFor = value }
        if let value = positiveDuration(fields, "max_open_for") { policy.maxOpenFor = value }
        if let value = fields["half_open_probes"].flatMap({ reader.int($0, path: fields.path("half_open_probes"), min: 1, max: 10_000) }) {
            policy.halfOpenProbes = value
        }
        if fields.isExplicitNull("failure_rate") {
            policy.failureRate = nil
        } else if let rateNode = fields["failure_rate"],
            let rate = reader.fields(rateNode, path: fields.path("failure_rate"), known: ["threshold", "window", "min_requests"])
        {
            let threshold = rate.required("threshold").flatMap { reader.parsed($0, path: rate.path("threshold"), ConfigValues.fraction) }
            let window = rate.required("window") != nil ? positiveDuration(rate, "window") : nil
            let minRequests = rate["min_requests"].flatMap { reader.int($0, path: rate.path("min_requests"), min: 1) } ?? 20
            if let threshold, let window {
                policy.failureRate = FailureRatePolicy(threshold: threshold, window: window, minRequests: minRequests)
            }
        }
        if policy.maxOpenFor < policy.openFor {
            reader.report(
                "max_open_for (\(policy.maxOpenFor.configNotation)) is shorter than open_for (\(policy.openFor.configNotation))",
                at: fields["max_open_for"] ?? node, path: fields.path("max_open_for")
            )
        }
        return policy
    }

    /// `off`, `continue`, or `{ mode: continue, max_resumes: 2 }`. Returns .some(nil) for off.
    private func readStreamRecovery(_ node: Node, path: String) -> StreamRecoveryPolicy?? {
        func mode(_ text: String, at node: Node, path: String) -> Bool? {
            switch text {
            // YAML 1.1 reads a bare off/no/false as a boolean; all mean the same here.
            case "off", "false", "no": return false
            case "continue": return true
            default:
                reader.report("unknown value '\(text)' (expected off or continue)", at: node, path: path)
                return nil
            }
        }
        if case .scalar(let scalar) = node {
            guard let on = mode(scalar.string, at: node, path: path) else { return nil }
            return .some(on ? StreamRecoveryPolicy(maxResumes: StreamRecoveryPolicy.defaultMaxResumes) : nil)
        }
        guard let fields = reader.fields(node, path: path, known: ["mode", "max_resumes"]) else { return nil }
        var on = true
        if let modeNode = fields.required("mode"), let text = reader.string(modeNode, path: fields.path("mode")) {
            guard let parsed = mode(text, at: modeNode, path: fields.path("mode")) else { return nil }
            on = parsed
        }
        let resumes = fields["max_resumes"].flatMap { reader.int($0, path: fields.path("max_resumes"), min: 1, max: 10) }
            ?? StreamRecoveryPolicy.defaultMaxResumes
        return .some(on ? StreamRecoveryPolicy(maxResumes: resumes) : nil)
    }

    private func readRetry(_ node: Node, path: String, base: RetryPolicy) -> RetryPolicy? {
        guard let fields = reader.fields(node, path: path, known: ["max_attempts", "per_model", "backoff"]) else { return nil }
        var policy = base
        if let value = fields["max_attempts"].flatMap({ reader.int($0, path: fields.path("max_attempts"), min: 1, max: 100) }) {
            policy.maxAttempts = value
        }
        if let value = fields["per_model"].flatMap({ reader.int($0, path: fields.path("per_model"), min: 1, max: 100) }) {
            policy.perModel = value
        }
        if let backoffNode = fields["backoff"],
            let backoff = reader.fields(backoffNode, path: fields.path("backoff"), known: ["initial", "multiplier", "max", "jitter"])
        {
            if let value = duration(backoff, "initial") { policy.backoff.initial = value }
            if let value = backoff["multiplier"].flatMap({ reader.double($0, path: backoff.path("multiplier"), minimum: 1) }) {
                policy.backoff.multiplier = value
            }
            if let value = duration(backoff, "max") { policy.backoff.max = value }
            if let value = backoff["jitter"].flatMap({
                reader.oneOf($0, path: backoff.path("jitter"), BackoffPolicy.Jitter.self, allowed: [.full, .equal, .none])
            }) {
                policy.backoff.jitter = value
            }
            if policy.backoff.max < policy.backoff.initial {
                reader.report(
                    "max (\(policy.backoff.max.configNotation)) is shorter than initial (\(policy.backoff.initial.configNotation))",
                    at: backoff["max"] ?? backoffNode, path: backoff.path("max")
                )
            }
        }
        return policy
    }

    // MARK: Helpers

    func duration(_ fields: ConfigReader.Fields, _ key: String) -> Duration? {
        fields[key].flatMap { reader.parsed($0, path: fields.path(key), ConfigValues.duration) }
    }

    func positiveDuration(_ fields: ConfigReader.Fields, _ key: String) -> Duration? {
        guard let value = duration(fields, key) else { return nil }
        guard value > .zero else {
            reader.report("must be longer than zero", at: fields[key], path: fields.path(key))
            return nil
        }
        return value
    }

    /// Reads a secret from the environment variable named in the file. A missing variable is
    /// reported with its name; in check mode it is a warning and an empty placeholder is used.
    func secret(named name: String, node: Node, path: String) -> String? {
        guard ConfigValues.isEnvironmentVariableName(name) else {
            // A pasted key is already reported by rejectLiteralSecrets.
            if !ConfigValues.looksLikeSecret(name) {
                reader.report("'\(name)' is not a valid environment variable name", at: node, path: path)
            }
            return nil
        }
        if let value = environment[name], !value.isEmpty {
            return value
        }
        switch mode {
        case .serve:
            reader.report("environment variable \(name) is not set", at: node, path: path)
            return nil
        case .check:
            reader.report("environment variable \(name) is not set (serve will refuse to start without it)", at: node, path: path, severity: .warning)
            return ""
        }
    }

    /// Every scalar value in the file: credentials must come from the environment only.
    private func rejectLiteralSecrets(_ node: Node, path: String) {
        switch node {
        case .scalar(let scalar):
            if ConfigValues.looksLikeSecret(scalar.string) {
                reader.report(
                    "looks like a secret; secrets come only from environment variables named by *_env keys", at: node, path: path
                )
            }
        case .mapping(let mapping):
            for (key, value) in mapping {
                let name = key.scalar?.string ?? "?"
                rejectLiteralSecrets(value, path: ConfigReader.join(path, name))
            }
        case .sequence(let sequence):
            for (index, item) in sequence.enumerated() {
                rejectLiteralSecrets(item, path: "\(path)[\(index)]")
            }
        case .alias:
            reader.report("YAML aliases are not supported in routes.yaml", at: node, path: path)
        }
    }

    private func declaredNames(of section: String) -> [String] {
        declared[section] ?? []
    }
}
