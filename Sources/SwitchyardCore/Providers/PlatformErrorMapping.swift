/// What a platform's named error (`ThrottlingException`, `RESOURCE_EXHAUSTED`) is in Anthropic's
/// terms: the status and `error.type` the caller sees, and the outcome-table row it falls in.
struct PlatformErrorMapping: Sendable, Equatable {
    var status: Int
    var type: String
    var row: OutcomeRow
}
