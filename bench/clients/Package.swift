// swift-tools-version: 6.1
// Upstream HTTP clients compared one change at a time (bench/README.md, performance round
// two): AsyncHTTPClient's async API (the router before), its delegate API with event-loop
// preferences, one client per loop, a request template, and Switchyard's own HTTP1Client; each
// posting the same Messages request to the same local server, requests/s and CPU per request.
// Separate from the main package so that CI does not build it.
//   cd bench/clients && swift build -c release && .build/release/ClientBench 5 3 1,16,64
// Results of one run: RESULTS.md.
import PackageDescription

let package = Package(
    name: "switchyard-client-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "switchyard"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "ClientBench",
            dependencies: [
                .product(name: "SwitchyardCore", package: "switchyard"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        )
    ]
)
