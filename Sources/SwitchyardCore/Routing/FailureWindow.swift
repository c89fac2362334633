/// Success and failure counts over a sliding time window, kept in a fixed ring of buckets so that
/// recording stays O(1) and allocation-free.
struct FailureWindow: Sendable, Equatable {
    static let bucketCount = 10

    let bucketWidth: Int64
    private var starts = [Int64](repeating: .min, count: FailureWindow.bucketCount)
    private var failures = [Int](repeating: 0, count: FailureWindow.bucketCount)
    private var totals = [Int](repeating: 0, count: FailureWindow.bucketCount)

    init(window: Duration) {
        bucketWidth = max(1, window.nanoseconds / Int64(Self.bucketCount))
    }

    mutating func record(failed: Bool, now: MonotonicInstant) {
        let start = now.nanoseconds - now.nanoseconds % bucketWidth
        let slot = Int((start / bucketWidth) % Int64(Self.bucketCount))
        if starts[slot] != start {
            starts[slot] = start
            failures[slot] = 0
            totals[slot] = 0
        }
        totals[slot] += 1
        if failed { failures[slot] += 1 }
    }

    /// Counts of the buckets that still overlap `[now - window, now]`.
    func counts(now: MonotonicInstant) -> (failures: Int, total: Int) {
        let oldest = now.nanoseconds - bucketWidth * Int64(Self.bucketCount)
        var failed = 0
        var total = 0
        for slot in 0..<Self.bucketCount where starts[slot] > oldest {
            failed += failures[slot]
            total += totals[slot]
        }
        return (failed, total)
    }

    mutating func reset() {
        for slot in 0..<Self.bucketCount {
            starts[slot] = .min
            failures[slot] = 0
            totals[slot] = 0
        }
    }
}
