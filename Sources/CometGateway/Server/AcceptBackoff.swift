import CometCore
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Stops accepting for a while when the process runs out of file descriptors (EMFILE, ENFILE) or kernel memory.
///
/// NIO's own `AcceptBackoffHandler` only acts on the next `read`, which NIO does not issue when the very first
/// `accept` of a read fails; the listening socket then stays registered and level-triggered readiness spins the
/// loop. This handler pauses reading (`autoRead` off, which unregisters the socket) and resumes after a backoff that
/// doubles from 50 ms to 1 s while the condition lasts. Open connections are served meanwhile; waiting clients stay
/// in the kernel backlog.
final class AcceptBackoff: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let logger: Logger
    private let stats: GatewayStats
    private var delay: TimeAmount = .milliseconds(50)
    private var paused = false
    private static let maxDelay: TimeAmount = .seconds(1)

    init(logger: Logger, stats: GatewayStats) {
        self.logger = logger
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // An accept succeeded: the next exhaustion starts from the shortest backoff.
        self.delay = .milliseconds(50)
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let ioError = error as? IOError, case let code = ioError.errnoCode,
              code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
        else {
            context.fireErrorCaught(error)
            return
        }
        guard !self.paused else { return }
        self.paused = true
        self.stats.acceptBackoffs.add(1, ordering: .relaxed)
        self.logger.warning(
            "accept failed: out of file descriptors or memory; pausing accepts",
            metadata: ["comet.errno": "\(code)", "comet.backoff_ms": "\(self.delay.nanoseconds / 1_000_000)"]
        )
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let delay = self.delay
        self.delay = min(self.delay * 2, Self.maxDelay)
        context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay) {
            self.paused = false
            guard context.channel.isActive else { return }
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }
}

@available(*, unavailable)
extension AcceptBackoff: Sendable {}
