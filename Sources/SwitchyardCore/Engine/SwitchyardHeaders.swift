/// The response headers Switchyard adds to every answer of the proxy path.
enum SwitchyardHeaders {
    static let route = "x-switchyard-route"
    static let model = "x-switchyard-model"
    static let attempts = "x-switchyard-attempts"
}
