import FuzzDriver

/// The symbol libFuzzer's own objects refer to; the driver calls the same function.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    return fuzzOne(data, size)
}

runFuzzer(testOneInput)
