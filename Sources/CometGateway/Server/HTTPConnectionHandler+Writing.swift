import CometCore
import NIOCore

/// Writing a connection's responses: in order behind pipelined publish answers, only the head for `HEAD`, and the
/// close that a response without keep-alive (or a refused or malformed request) ends with.
extension HTTPConnectionHandler {
    /// Writes `response` (only its head for a `HEAD` request); returns whether the connection stays open after it.
    func respond(_ response: HTTPResponse, head: RequestHead?) -> Bool {
        self.respond(response, onlyHead: head?.method == .head)
    }

    /// Writes `response` (only its head when `onlyHead`); returns whether the connection stays open after it.
    func respond(_ response: HTTPResponse, onlyHead: Bool) -> Bool {
        let keepAlive = self.machine.keepAlive && !response.close
        if self.pipelined.isEmpty {
            self.writer!.writeAndFlush(self.serialize(response, keepAlive: keepAlive, onlyHead: onlyHead))
        } else {
            self.pipelined.append(.response(response, onlyHead: onlyHead, keepAlive: keepAlive))
        }
        if !keepAlive {
            self.enterClosed()
            if self.pipelined.isEmpty {
                self.writer!.closeWhenWritten()
            } else {
                self.pipelined.closeWhenWritten = true  // after the answers still waiting for the broker
            }
        }
        return keepAlive
    }

    /// `response`'s bytes (only its head, for a `HEAD` request, when `onlyHead`).
    func serialize(_ response: HTTPResponse, keepAlive: Bool, onlyHead: Bool) -> ByteBuffer {
        var bytes = response.serialize(keepAlive: keepAlive, date: self.dateCache!.current)
        if onlyHead, let body = response.body {
            bytes.moveWriterIndex(to: bytes.writerIndex - body.readableBytes)  // the head of a GET, Content-Length included
        }
        return bytes
    }

    /// Answers a head that cannot be served (and whose body is not read) and closes.
    func refuse(_ response: HTTPResponse, context: ChannelHandlerContext) {
        self.machine.refused()
        var response = response
        response.close = true
        _ = self.respond(response, head: nil)
    }

    /// Answers a malformed or refused request (the machine already stopped reading) and closes.
    func fail(_ error: GatewayError, context: ChannelHandlerContext) {
        _ = self.respond(HTTPResponse(error: error, close: true), head: nil)
    }
}
