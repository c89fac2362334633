// swift-tools-version: 6.1
// libFuzzer targets over the routes.yaml loader, the request body parser, the HTTP/1 head
// parsers (against NIO's decoder) and the Chat Completions <-> Messages translation. Separate from the main package: everything here is compiled
// with -sanitize=fuzzer.
//   cd fuzz && swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
//   .build/debug/FuzzConfig -max_total_time=60 corpus/config
//   .build/debug/FuzzRequest -max_total_time=60 corpus/request
//   .build/debug/FuzzHead -max_total_time=60 corpus/head
//   .build/debug/FuzzChat -max_total_time=60 corpus/chat
// (lld: gold fails on the sanitizer's debug info.) New interesting inputs are added to the
// corpus folders; copy them elsewhere first if they should not be committed.
import PackageDescription

let package = Package(
    name: "switchyard-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "switchyard"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "FuzzChat",
            dependencies: ["FuzzDriver", .product(name: "SwitchyardCore", package: "switchyard"), .product(name: "NIOCore", package: "swift-nio")]
        ),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzDriver", .product(name: "SwitchyardCore", package: "switchyard")]),
        .executableTarget(
            name: "FuzzHead",
            dependencies: [
                "FuzzDriver", .product(name: "SwitchyardCore", package: "switchyard"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzRequest",
            dependencies: ["FuzzDriver", .product(name: "SwitchyardCore", package: "switchyard"), .product(name: "NIOCore", package: "swift-nio")]
        ),
    ]
)
