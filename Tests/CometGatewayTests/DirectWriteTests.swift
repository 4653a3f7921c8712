import CometCore
import CometTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import CometGateway

#if canImport(Glibc)
import Glibc
#endif

/// Writes straight to the socket (``ConnectionWriter``): the descriptor is found and proven, and bytes stay in order
/// when a lagging socket sends writes through NIO's queue and back.
@Suite("Direct socket writes", .serialized)
struct DirectWriteTests {
    @Test("An accepted TCP channel's descriptor is found, and it is that connection's socket")
    func descriptorOfAcceptedChannel() async throws {
        let found = NIOLockedValueBox<CInt?>(nil)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DescriptorProbe(found: found))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        var descriptor: CInt?
        for _ in 0..<200 where descriptor == nil {
            descriptor = found.withLockedValue { $0 }
            if descriptor == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let fd = try #require(descriptor)
        // The descriptor's peer is the client's own address.
        #expect(LoopbackSockets.port(of: fd, peer: true) == client.localAddress!.port!)
        try await client.close()
        try await server.close()
    }

    @Test("A channel that is not a socket has no descriptor")
    func noDescriptorForEmbeddedChannel() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(SocketDescriptor.of(channel) == nil)
        _ = try channel.finish()
    }

    @Test("A subscriber whose socket fills gets every message once, in order, through the queue and back to direct writes")
    func laggingSubscriberKeepsOrder() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.maxOutboundBytes = 16 << 20 }) { live in
            let queued = try await Self.runLaggingSubscriber(live, floodLimit: 200)
            #expect(queued.whileLagging > 0, "a full socket queues writes in NIO")
            #expect(queued.afterwards == queued.caughtUp, "writes go straight to the socket again once NIO is empty")
        }
    }

    @Test("With direct_writes off every write goes through NIO: same order, nothing counted as queued")
    func directWritesOff() async throws {
        try await LiveGateway.withGateway(configure: {
            $0.limits.maxOutboundBytes = 16 << 20
            $0.server.directWrites = false
        }) { live in
            let queued = try await Self.runLaggingSubscriber(live, floodLimit: 60)
            #expect(queued.whileLagging == 0)
            #expect(queued.caughtUp == 0)
            #expect(queued.afterwards == 0)
        }
    }

    @Test("A burst (a batch publish, a stream's catch-up) reaches each subscriber in order, gathered, without the queue")
    func burstIsGathered() async throws {
        try await LiveGateway.withGateway { live in
            try publish(live, "ga", "before")
            let sse = try await RawHTTPClient.get(port: live.publicPort, "/sub/ga?last_event_id=0",
                                                  headers: ["Accept: text/event-stream"])
            let mixed = try await RawHTTPClient.get(port: live.publicPort, "/sub/ga,gb?transport=stream")
            #expect(await sse.wait { $0.contains("data: before") }, "the catch-up follows the head")
            #expect(await mixed.wait { $0.contains("last_event_id") })
            let entries = (1...50).map { #"{"channel":"g\#($0 % 2 == 0 ? "a" : "b")","data":"b\#($0)"}"# }
            let batch = Curl.post("\(live.publishURL)/pub", #"{"messages":["# + entries.joined(separator: ",") + "]}")
            #expect(batch.status == 201)
            #expect(await mixed.wait { (try? streamMessages($0).count) == 50 })
            #expect(await sse.wait { $0.contains("data: b50\n") })
            let mixedData = try streamMessages(mixed.text).map { $0["data"] as? String }
            #expect(mixedData == (1...50).map { "b\($0)" })
            let sseData = sse.text.split(separator: "\n").filter { $0.hasPrefix("data: b") }.map { $0.dropFirst(6) }
            #expect(sseData == ["before"] + stride(from: 2, through: 50, by: 2).map { "b\($0)"[...] })
            #expect(try Self.queuedWrites(live) == 0, "nothing waited in NIO's queue")
            await sse.close()
            await mixed.close()
        }
    }

    /// A subscriber stops reading while 60 KiB messages flood in until a write is queued (at most `floodLimit` of
    /// them: with direct writes off, none is counted), then reads everything; a second subscriber reads all along. Both must get every
    /// message exactly once and in order, and so must three more published once the first has caught up.
    /// Returns the `queued_writes` counter at the end of the flood, once both caught up, and at the end.
    private static func runLaggingSubscriber(_ live: LiveGateway, floodLimit: Int) async throws -> (whileLagging: Int, caughtUp: Int, afterwards: Int) {
        let lagging = try await nonReadingStream(live, "lag")
        let reader = try await RawHTTPClient.get(port: live.publicPort, "/sub/lag?transport=stream")
        #expect(await reader.wait { $0.contains("last_event_id") })

        let filler = String(repeating: "x", count: 60 * 1024)
        var published = 0
        var queued = 0
        // Bounded: 200 × 60 KiB is 12 MiB, within the 16 MiB outbound bound; loopback socket buffers (a few MiB
        // at most; about 2.7 MiB in our runs) fill sooner, and 60 of them (3.6 MiB) fill them too.
        while published < floodLimit {
            published += 1
            try publish(live, "lag", "m\(published)-\(filler)")
            queued = try Self.queuedWrites(live)
            if queued > 0 { break }
        }
        for _ in 0..<3 {
            published += 1
            try publish(live, "lag", "m\(published)-\(filler)")
        }
        let whileLagging = try Self.queuedWrites(live)
        try await lagging.setAutoRead(true)
        #expect(await lagging.wait(timeout: .seconds(30), tailBytes: 64 * 1024, until: Self.has(published)))
        #expect(await reader.wait(timeout: .seconds(30), tailBytes: 64 * 1024, until: Self.has(published)))

        // Caught up: NIO's queue is empty again, so the next writes go straight to the socket.
        let caughtUp = try Self.queuedWrites(live)
        for _ in 0..<3 {
            published += 1
            try publish(live, "lag", "m\(published)")
        }
        #expect(await lagging.wait(timeout: .seconds(10), tailBytes: 64 * 1024, until: Self.has(published)))
        #expect(await reader.wait(timeout: .seconds(10), tailBytes: 64 * 1024, until: Self.has(published)))
        let afterwards = try Self.queuedWrites(live)

        for client in [lagging, reader] {
            let data = try streamMessages(client.text).map { try #require($0["data"] as? String) }
            let numbers = data.map { Int($0.dropFirst().prefix(while: { $0 != "-" })) ?? -1 }
            #expect(numbers == Array(1...published), "every message once, in order")
        }
        let health = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)
        #expect(health["slow_consumer_closes"] as? Int == 0)
        await lagging.close()
        await reader.close()
        return (whileLagging, caughtUp, afterwards)
    }

    private static func queuedWrites(_ live: LiveGateway) throws -> Int {
        let health = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)
        return try #require(health["queued_writes"] as? Int)
    }

    /// Whether a stream's text holds message number `count` (the last one) complete.
    private static func has(_ count: Int) -> @Sendable (String) -> Bool {
        { text in
            guard let range = text.range(of: "\"m\(count)-") ?? text.range(of: "\"m\(count)\"") else { return false }
            return text[range.upperBound...].contains("\n")
        }
    }
}

/// Records the descriptor ``SocketDescriptor`` finds for the channel once it is active.
private final class DescriptorProbe: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let found: NIOLockedValueBox<CInt?>

    init(found: NIOLockedValueBox<CInt?>) {
        self.found = found
    }

    func channelActive(context: ChannelHandlerContext) {
        let descriptor = SocketDescriptor.of(context.channel)
        self.found.withLockedValue { $0 = descriptor }
        context.fireChannelActive()
    }
}
