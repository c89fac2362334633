// swift-tools-version: 6.1
// The floor under any SwiftNIO router on this machine, and the layers above it one at a time:
// - NIOProxyFloor: a bare reverse proxy on NIO's HTTP/1.1 codec with no routing, no audit, no
//   metrics (one upstream keep-alive connection per caller connection, on the caller's event
//   loop); with `task`, each request awaited in a Swift task as an async router does;
// - LayeredProxy `own`: the same NIO server and task, upstream calls through Switchyard's own
//   HTTP1Client (pool per loop); `httptypes`: the same behind NIO's HTTPTypes codec, as
//   Hummingbird's pipeline has it; `hummingbird`: Hummingbird's HTTP/1 server (the router's
//   inbound side) and the same client, still no routing.
// What a layer adds over nginx is what it costs; Switchyard (all layers plus routing, audit,
// metrics) cannot add less. Separate from the main package so that CI does not build it.
//   bash bench/floor.sh     (builds both, runs them next to nginx and Switchyard)
import PackageDescription

let package = Package(
    name: "switchyard-nio-floor",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "switchyard"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "NIOProxyFloor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "LayeredProxy",
            dependencies: [
                .product(name: "SwitchyardCore", package: "switchyard"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
