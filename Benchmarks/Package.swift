// swift-tools-version:6.1
// Hot-path microbenchmarks, kept out of the main package so the library never depends on benchmark tooling.
// Run from this folder:  swift package benchmark   (see the README's Performance section)
import PackageDescription

let package = Package(
    name: "CometBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "comet-gateway", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    ],
    targets: [
        .executableTarget(
            name: "CometBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CometCore", package: "comet-gateway"),
                .product(name: "CometTestSupport", package: "comet-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CometBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
