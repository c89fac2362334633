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
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "SwitchyardCore", package: "switchyard"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
