import Testing

@testable import SwitchyardCore

/// The page at `GET /admin` is one document that needs nothing from outside (the router serves it
/// under `default-src 'self'`, often on machines with no internet), and it keeps the handles the
/// browser test (`Tests/dashboard/browser_check.py`) drives it by.
@Suite("Dashboard page")
struct DashboardPageTests {
    let html = DashboardPage.html

    @Test func isOneHTMLDocument() {
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.hasSuffix("</html>"))
        #expect(html.contains("<meta charset=\"utf-8\">"))
        #expect(html.contains("name=\"viewport\""))
    }

    @Test func loadsNothingFromOutside() {
        #expect(!html.contains("http://"))
        #expect(!html.contains("https://"))
        #expect(!html.contains("<script src"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("@import"))
        #expect(!html.contains("url("))
        #expect(!html.contains("@font-face"))
    }

    @Test func talksOnlyToTheAdminAPI() {
        #expect(html.contains("fetch(\"/admin/events\""))
        #expect(html.contains("\"/admin/models/\""))
        #expect(!html.contains("new EventSource"))
        #expect(!html.contains("localStorage"))
    }

    @Test(arguments: ["login-token", "login-submit", "conn-state", "decisions", "batches"])
    func hasFixedTestHandle(_ id: String) {
        #expect(html.contains("data-testid=\"\(id)\""))
    }

    /// Per-model handles are built in the script from the model's name.
    @Test(arguments: ["model-card-", "breaker-", "drain-", "drained-"])
    func buildsPerModelTestHandle(_ prefix: String) {
        #expect(html.contains("\"\(prefix)\" + name"))
    }
}
