import NIOCore

/// A command on its way to Redis: its encoded bytes, and where its reply goes (nil: no reply is expected, as for
/// pub/sub commands, whose answers are pushes).
struct RedisRequest {
    var bytes: ByteBuffer
    var reply: EventLoopPromise<RESPValue>?
}

/// The RESP side of a connection to Redis: pipelined commands matched to replies in order, or, on a pub/sub
/// connection, every value handed to a callback. Bytes that are not RESP (or break the parser's bounds) fail every
/// waiting command and close the connection.
final class RESPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private let parser: RESPParser
    private var pending = CircularBuffer<EventLoopPromise<RESPValue>>()
    private var buffer = ByteBuffer()
    /// Set on a pub/sub connection: every value read goes here (on the connection's loop).
    var pushes: (@Sendable (RESPValue) -> Void)?
    private var failure: RedisError?

    init(limits: RESPParser.Limits) {
        self.parser = RESPParser(limits: limits)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        if let reply = request.reply {
            if let failure = self.failure {
                reply.fail(failure)
                promise?.fail(failure)
                return
            }
            self.pending.append(reply)
        }
        context.write(self.wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if self.buffer.readableBytes == 0 {
            self.buffer = incoming
        } else {
            self.buffer.writeBuffer(&incoming)
        }
        do {
            while let value = try self.parser.next(&self.buffer) {
                if let pushes = self.pushes {
                    pushes(value)
                } else if let reply = self.pending.popFirst() {
                    reply.succeed(value)
                } else {
                    throw RESPProtocolError("a reply nothing asked for")
                }
            }
        } catch let error as RESPProtocolError {
            self.fail(with: .protocolError(error.reason), context: context)
            return
        } catch {
            self.fail(with: .protocolError("\(error)"), context: context)
            return
        }
        if self.buffer.readableBytes == 0 {
            self.buffer.clear()
        } else if self.buffer.readerIndex > 64 * 1024 {
            self.buffer.discardReadBytes()
        }
    }

    /// Fails every waiting command with `error` and closes the connection.
    func fail(with error: RedisError, context: ChannelHandlerContext) {
        if self.failure == nil { self.failure = error }
        while let reply = self.pending.popFirst() { reply.fail(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let error = self.failure ?? .connectionClosed
        self.failure = error
        while let reply = self.pending.popFirst() { reply.fail(error) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(with: .connectionClosed, context: context)
    }
}

@available(*, unavailable)
extension RESPChannelHandler: Sendable {}
