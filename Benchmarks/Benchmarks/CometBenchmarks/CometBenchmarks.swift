import Benchmark
import CometCore
import CometTestSupport
import NIOCore

/// Hot-path microbenchmarks: encoding one message for every transport, and delivering one message to N
/// connections through the production pipeline (hub, shard, subscription, NIO write and flush) on one event loop.
/// Metrics: instructions and mallocs per iteration; for fan-out, divide by N for the cost per delivery.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .instructions, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    let payload = ByteBuffer(string: #"{"seq":123456,"t":1795578601163386,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#)
    let channel = try! ChannelName(validating: "bench")

    Benchmark("Encode one 128-byte message for every transport") { benchmark in
        for id in benchmark.scaledIterations {
            blackHole(Message(channel: channel, id: UInt64(id) + 1, event: nil, contentType: nil, data: payload,
                              publishedAt: 0))
        }
    }

    for subscribers in [1, 100, 1000] {
        Benchmark(
            "Fan-out one SSE message to \(subscribers) connections",
            configuration: .init(scalingFactor: .one)
        ) { benchmark, fixture in
            for _ in benchmark.scaledIterations {
                blackHole(fixture.publish())
            }
        } setup: {
            try FanOutFixture(subscribers: subscribers, transport: "sse")
        }
    }

    Benchmark("Fan-out one NDJSON message to 1000 connections") { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.publish())
        }
    } setup: {
        try FanOutFixture(subscribers: 1000, transport: "stream")
    }
}
