import Testing

@testable import SwitchyardCore

/// `headroom`, `retry_budget` and `fleet` in routes.yaml: defaults, values, and what is refused.
@Suite("routes.yaml health keys")
struct ConfigHealthTests {
    static let env = ["K": "sk-ant-test-000000000000", "DB_PASSWORD": "pw"]

    static func yaml(route: String = "", extra: String = "") -> String {
        """
        version: 1
        providers:
          a: { type: anthropic, base_url: "http://127.0.0.1:1", api_key_env: K }
        models:
          sonnet: { provider: a, model: claude-sonnet-4-5 }
        routes:
          default:
            models: [sonnet]
        \(route)
        \(extra)
        """
    }

    func load(_ yaml: String) throws(ConfigError) -> SwitchyardConfig {
        try ConfigLoader(environment: Self.env).load(yaml: yaml, source: "routes.yaml").config
    }

    func problems(_ yaml: String) -> [String] {
        do {
            _ = try load(yaml)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func headroomIsOnAtFivePercentAndTheBudgetOffByDefault() throws {
        let config = try load(Self.yaml())
        let route = try #require(config.route(named: "default"))
        #expect(route.headroom.minRemaining == 0.05)
        #expect(route.retryBudget == nil)
        #expect(config.fleet == nil)
        let text = RoutingTableDescription.render(config)
        #expect(text.contains("headroom: skip a model below 5% of a rate limit remaining until its reset; retry_budget: off"))
        #expect(text.contains("fleet: off"))
    }

    @Test func routeKeysAreRead() throws {
        let config = try load(
            Self.yaml(route: "    headroom: { min_remaining: 10% }\n    retry_budget: { percent: 25, min_per_second: 2.5 }")
        )
        let route = try #require(config.route(named: "default"))
        #expect(route.headroom.minRemaining == 0.1)
        #expect(route.retryBudget == RetryBudgetPolicy(percent: 0.25, minPerSecond: 2.5))
        #expect(RoutingTableDescription.render(config).contains("retry_budget: retries in flight up to 25% of active requests, or 2.5 a second"))
        let defaults = try load(Self.yaml(route: "    retry_budget: {}\n    headroom: { min_remaining: 0 }"))
        #expect(defaults.route(named: "default")?.retryBudget == RetryBudgetPolicy(percent: 0.2, minPerSecond: 5))
        #expect(defaults.route(named: "default")?.headroom.minRemaining == 0)
    }

    @Test func badValuesAreRefusedWithTheirPath() {
        let found = problems(Self.yaml(route: "    headroom: { min_remaining: 150% }\n    retry_budget: { percent: -1, min_per_second: x, burst: 3 }"))
        #expect(found.contains { $0.contains("routes.default.headroom.min_remaining") && $0.contains("invalid share") })
        #expect(found.contains { $0.contains("routes.default.retry_budget.percent") })
        #expect(found.contains { $0.contains("routes.default.retry_budget.min_per_second") })
        #expect(found.contains { $0.contains("routes.default.retry_budget.burst") && $0.contains("unknown key") })
    }

    @Test func fleetSharesThePostgresBatchStore() throws {
        let config = try load(
            Self.yaml(
                extra: """
                    batches: { store: "postgres://switchyard@db:5432/switchyard?schema=prod", store_password_env: DB_PASSWORD }
                    fleet: { store: postgres, replica: replica-a }
                    """
            )
        )
        let fleet = try #require(config.fleet)
        #expect(fleet.replica == "replica-a" && fleet.password == "pw" && fleet.url.hasSuffix("schema=prod"))
        #expect(RoutingTableDescription.render(config).contains("fleet: shared health on PostgreSQL"))
        #expect(try FleetLink.configuration(url: fleet.url, password: fleet.password).1 == "switchyard_fleet_prod")
    }

    @Test func fleetWithoutAPostgresBatchStoreIsAnError() {
        let noBatches = problems(Self.yaml(extra: "fleet: { store: postgres }"))
        #expect(noBatches.contains { $0.contains("fleet.store") && $0.contains("needs batches.store to be a postgres:// URL") })
        let sqlite = problems(Self.yaml(extra: "batches: { store: \"sqlite:./b.db\" }\nfleet: { store: postgres }"))
        #expect(sqlite.contains { $0.contains("fleet.store") && $0.contains("SQLite") })
        let other = problems(Self.yaml(extra: "fleet: { store: redis }"))
        #expect(other.contains { $0.contains("fleet.store") && $0.contains("unknown value 'redis'") })
        let name = problems(
            Self.yaml(extra: "batches: { store: \"postgres://u@h/d\" }\nfleet: { store: postgres, replica: \"has space\" }")
        )
        #expect(name.contains { $0.contains("fleet.replica") })
    }
}
