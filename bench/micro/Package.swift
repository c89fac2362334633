// swift-tools-version: 6.1
// Microbenchmarks of Switchyard's hot path with ordo-one/benchmark: time and allocations per
// operation. Separate from the main package so that CI does not build the benchmark tooling.
//   cd bench/micro && swift package benchmark
import PackageDescription

let package = Package(
    name: "switchyard-micro",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "switchyard"),
        // Already Switchyard's own: named here for the header type the headroom benchmark builds.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "SwitchyardCore", package: "switchyard"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
