import SwitchyardCore

/// One libFuzzer input: any bytes as routes.yaml. The loader must never crash, and every
/// problem it reports must point at a line and column.
func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try ConfigLoader(environment: ["ANTHROPIC_API_KEY": "k", "SWITCHYARD_ADMIN_TOKEN": "t"], mode: .serve)
            .load(yaml: text, source: "fuzz.yaml")
    } catch {
        for problem in error.problems where problem.line < 1 || problem.column < 1 {
            fatalError("problem without a position: \(problem)")
        }
    }
    return 0
}
