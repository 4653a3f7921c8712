import CometCore
import NIOCore
import NIOHTTP1

/// What a proxied request asks of the client connection carrying it. Called on the connection's event loop.
protocol ProxyExchangeOwner: AnyObject {
    /// The response went out in full: serve the next request (`keepAlive`) or close.
    func proxyFinished(keepAlive: Bool)
    /// The upstream failed before answering: answer the client with this error.
    func proxyFailed(_ error: GatewayError)
    /// The upstream failed after its response started: the client's response cannot be completed; close.
    func proxyAborted()
    /// The upstream answered with a GRIP instruction (read in full; nothing was written to the client): carry it out.
    func proxyInstructed(_ instruction: GripInstruction, request: RequestHead, upstream: ProxyConfiguration.Upstream)
    /// A fetch (``ProxyExchange/Fetch``) was answered with a response that is not a GRIP instruction, read in full.
    func proxyFetched(_ response: GripInstruction.Response)
    /// Pause (false) or resume (true) reading the client's request body: back-pressure from the upstream.
    func setClientReading(_ reading: Bool)
    /// The upstream accepted an upgrade (`101`, written): from now on the connection's bytes go through the tunnel
    /// (``ProxyExchange/tunnelSend(_:)``). Returns the bytes the client already sent behind its request.
    func proxyTunnelOpened() -> ByteBuffer?
}

/// One request passed through to an upstream application: its head (headers rewritten by ``ProxyHeaders``) and
/// body go up as they arrive, the response comes back as it arrives, both ways with back-pressure.
///
/// A response carrying a GRIP instruction (``GripInstruction/isInstruction(_:)``) is not passed through: it is read in
/// full (at most ``GripInstruction/maxBodyBytes``) and handed to the owner, which holds the client's request.
///
/// The client's response is framed by the gateway: the upstream's `Content-Length` when it sent one, otherwise
/// chunked (or, for an HTTP/1.0 client, the end of the connection). Failures before the response starts are `502`
/// (connection refused or closed) or `504` (connect or response timeout); after, the client connection is closed.
final class ProxyExchange: UpstreamResponder, DeadlineOwner {
    /// A request the gateway makes for a client rather than passes through (a GRIP next link): a bodiless `GET` of
    /// `uri` with the client's request headers and `extraHeaders`; its response, whatever it is, is read in full and
    /// handed to the owner, never written to the client.
    struct Fetch {
        var uri: String
        var extraHeaders: [(String, String)]
    }

    private let head: RequestHead
    private let fetch: Fetch?
    private let upstream: ProxyConfiguration.Upstream
    private let configuration: ProxyConfiguration
    private let client: ProxyHeaders.Client
    /// Signs the request for the application (`Grip-Sig`), when configured.
    private let signature: GripSignature?
    private let pool: UpstreamPool
    /// The loop's deadlines: the response timeout is one (a NIO scheduled task per request cost a search of the
    /// loop's task heap at each cancellation: a quarter of the CPU of a proxied request in a profile).
    private let timers: ConnectionTimers
    private let timerID: UInt64
    private let writer: ConnectionWriter
    private let loop: any EventLoop
    private weak var owner: (any ProxyExchangeOwner)?
    /// The client's connection stays open after this response.
    private let keepAlive: Bool
    /// Bounds of a GRIP hold's channels.
    private let limits: (maxChannels: Int, maxChannelNameLength: Int)

    private var connection: UpstreamConnection?
    /// Body parts that arrived before the upstream connection was ready.
    private var pendingBody: [ByteBuffer] = []
    private var pendingBytes = 0
    private var bodyEnded = false
    private var responseStarted = false
    /// The response body goes to the client chunked.
    private var chunked = false
    private var finished = false
    /// A GRIP instruction being read: the response's status, reason, headers and the body so far.
    private var instruction: (status: Int, reason: String, headers: [(name: String, value: String)], body: [UInt8])?

    /// Most body bytes held while connecting before the client's reading pauses.
    private static let maxPendingBytes = 64 * 1024

    init(head: RequestHead, upstream: ProxyConfiguration.Upstream, configuration: ProxyConfiguration,
         client: ProxyHeaders.Client, keepAlive: Bool, limits: (maxChannels: Int, maxChannelNameLength: Int),
         pool: UpstreamPool, timers: ConnectionTimers, writer: ConnectionWriter, loop: any EventLoop,
         owner: any ProxyExchangeOwner, fetch: Fetch? = nil) {
        self.head = head
        self.fetch = fetch
        self.bodyEnded = fetch != nil
        self.limits = limits
        self.upstream = upstream
        self.configuration = configuration
        self.client = client
        self.signature = configuration.gripSignatureKey.map {
            GripSignature(key: $0, issuer: configuration.gripSignatureIssuer)
        }
        self.keepAlive = keepAlive
        self.pool = pool
        self.timers = timers
        self.timerID = timers.makeID()
        self.writer = writer
        self.loop = loop
        self.owner = owner
    }

    /// Connects (or takes a pooled connection) and sends the request head.
    func start() {
        if let idle = self.pool.idleConnection(to: self.upstream) {
            self.connected(idle)
            return
        }
        let timeout = TimeAmount.nanoseconds(Int64(self.configuration.connectTimeout * 1_000_000_000))
        self.pool.connection(to: self.upstream, timeout: timeout).hop(to: self.loop).assumeIsolated().whenComplete { result in
            guard !self.finished else {
                if case .success(let connection) = result { self.pool.release(connection.value) }
                return
            }
            switch result {
            case .success(let connection):
                self.connected(connection.value)
            case .failure(let error):
                self.fail(Self.connectError(error))
            }
        }
    }

    private func connected(_ connection: UpstreamConnection) {
        self.connection = connection
        connection.responder = self
        var headers = ProxyHeaders.request(self.head.headers, client: self.client, chunkedBody: self.head.isChunked,
                                           upgrade: self.head.isUpgrade && self.fetch == nil)
        var method = HTTPMethod(rawValue: self.head.method.description)
        var uri = self.head.uri
        if let fetch = self.fetch {
            headers.removeAll { ["content-length", "transfer-encoding", "upgrade"].contains($0.0.lowercased()) }
            headers += fetch.extraHeaders
            method = .GET
            uri = fetch.uri
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
        if !self.head.isUpgrade || self.fetch != nil { head.headers.replaceOrAdd(name: "connection", value: "keep-alive") }
        if let signature = self.signature { head.headers.add(name: "Grip-Sig", value: signature.token()) }
        let hasBody = self.head.hasBody && self.fetch == nil
        connection.send(head, flush: hasBody && !self.bodyEnded)
        for part in self.pendingBody { connection.send(part) }
        if self.pendingBytes > Self.maxPendingBytes { self.owner?.setClientReading(true) }
        self.pendingBody = []
        self.pendingBytes = 0
        if self.bodyEnded || !hasBody {
            self.requestSent()
        }
    }

    /// The next part of the client's request body.
    func sendBody(_ part: ByteBuffer) {
        guard !self.finished else { return }
        guard let connection = self.connection else {
            self.pendingBody.append(part)
            self.pendingBytes += part.readableBytes
            if self.pendingBytes > Self.maxPendingBytes { self.owner?.setClientReading(false) }
            return
        }
        connection.send(part)
        if !connection.isWritable { self.owner?.setClientReading(false) }
    }

    /// The client's request body is complete.
    func endBody() {
        guard !self.finished else { return }
        self.bodyEnded = true
        if self.connection != nil { self.requestSent() }
    }

    private func requestSent() {
        self.connection?.end()
        let timeout = Int64(self.configuration.responseTimeout * 1_000_000_000)
        self.timers.set(self.timerID, at: Int64(self.loop.now.uptimeNanoseconds) + timeout, owner: self)
    }

    func deadlineReached() {
        guard !self.responseStarted else { return }
        self.fail(GatewayError(.gatewayTimeout, "upstream response timed out"))  // closes the upstream connection
    }

    /// The client connection can take more response again.
    func clientWritable() {
        self.connection?.setReading(true)
    }

    /// The client connection went away: the upstream connection cannot be reused mid-exchange.
    func cancel() {
        guard !self.finished else { return }
        self.finished = true
        self.timers.clear(self.timerID)
        self.connection?.responder = nil
        self.connection?.close()
    }

    // MARK: - UpstreamResponder

    func upstreamResponseHead(_ response: HTTPResponseHead) {
        guard !self.finished, !self.responseStarted else { return }
        self.responseStarted = true
        self.timers.clear(self.timerID)
        if response.status.code == 101 && self.fetch == nil {
            self.openTunnel(response)
            return
        }
        let upstreamHeaders = response.headers.map { (name: $0.name, value: $0.value) }
        if self.fetch != nil || GripInstruction.isInstruction(upstreamHeaders) {
            self.instruction = (Int(response.status.code), response.status.reasonPhrase, upstreamHeaders, [])
            return
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(512)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(response.status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(response.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for (name, value) in ProxyHeaders.response(upstreamHeaders) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        let bodiless = self.head.method == .head || response.status.code == 204 || response.status.code == 304
            || response.status.code < 200
        if let length = response.headers.first(name: "content-length"), !response.headers.contains(name: "transfer-encoding") {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(length)
            buffer.writeStaticString("\r\n")
        } else if !bodiless {
            if self.head.minorVersion >= 1 {
                self.chunked = true
                buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
            } else {
                self.closeDelimited = true  // an HTTP/1.0 client: the body ends with the connection
            }
        }
        if !self.keepAlive || self.closeDelimited { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        self.writer.gather(buffer)  // out with the body that came in the same read (upstreamReadComplete)
    }

    func upstreamResponseBody(_ part: ByteBuffer) {
        guard !self.finished, self.responseStarted, part.readableBytes > 0 else { return }
        if self.instruction != nil {
            guard self.instruction!.body.count + part.readableBytes <= GripInstruction.maxBodyBytes else {
                self.fail(GatewayError(.badGateway, "GRIP response body too large"))
                return
            }
            self.instruction!.body.append(contentsOf: part.readableBytesView)
            return
        }
        if self.chunked {
            var framed = ByteBuffer()
            framed.reserveCapacity(part.readableBytes + 16)
            framed.writeString(String(part.readableBytes, radix: 16))
            framed.writeStaticString("\r\n")
            framed.writeImmutableBuffer(part)
            framed.writeStaticString("\r\n")
            self.writer.gather(framed)
        } else {
            self.writer.gather(part)
        }
    }

    func upstreamReadComplete() {
        guard self.responseStarted, !self.finished, !self.tunnel, self.instruction == nil else { return }
        self.writer.flush()
        if !self.writer.isWritable { self.connection?.setReading(false) }
    }

    func upstreamResponseEnd(reusable: Bool) {
        guard !self.finished else { return }
        guard self.responseStarted else {
            self.upstreamFailed()
            return
        }
        self.finished = true
        if let connection = self.connection {
            self.connection = nil
            if reusable && self.bodyEnded { self.pool.release(connection) } else { connection.close() }
        }
        if let read = self.instruction {
            self.instructed(read)
            return
        }
        if self.chunked { self.writer.gather(ByteBuffer(staticString: "0\r\n\r\n")) }
        self.writer.flush()
        self.owner?.proxyFinished(keepAlive: self.keepAlive && !self.closeDelimited)
    }

    /// The GRIP instruction is read: hand it over, or answer `502` with what is wrong with it.
    private func instructed(_ read: (status: Int, reason: String, headers: [(name: String, value: String)], body: [UInt8])) {
        if self.fetch != nil && !GripInstruction.isInstruction(read.headers) {
            self.owner?.proxyFetched(GripInstruction.Response(status: read.status, reason: read.reason,
                                                              headers: read.headers, body: read.body))
            return
        }
        do {
            let instruction = try GripInstruction.parse(
                status: read.status, reason: read.reason, headers: read.headers, body: read.body,
                maxChannels: self.limits.maxChannels, maxChannelNameLength: self.limits.maxChannelNameLength)
            self.owner?.proxyInstructed(instruction, request: self.head, upstream: self.upstream)
        } catch {
            self.owner?.proxyFailed(GatewayError(.badGateway, "invalid GRIP instruction: \(error.message)"))
        }
    }

    func upstreamFailed() {
        guard !self.finished else { return }
        if self.responseStarted && self.instruction == nil {
            self.finished = true
            self.timers.clear(self.timerID)
            self.owner?.proxyAborted()
        } else {
            self.fail(GatewayError(.badGateway, "upstream closed the connection"))
        }
    }

    func upstreamWritable() {
        self.owner?.setClientReading(true)
    }

    // MARK: - Tunnel (an upgrade that is not the gateway's own)

    private var tunnel = false

    private func openTunnel(_ response: HTTPResponseHead) {
        guard self.head.isUpgrade else {
            self.connection?.close()
            self.owner?.proxyAborted()  // a 101 the client did not ask for
            return
        }
        self.tunnel = true
        var buffer = ByteBuffer()
        buffer.writeString("HTTP/1.1 101 \(response.status.reasonPhrase)\r\n")
        let upstreamHeaders = response.headers.map { (name: $0.name, value: $0.value) }
        for (name, value) in ProxyHeaders.response(upstreamHeaders, upgrade: true) {
            buffer.writeString("\(name): \(value)\r\n")
        }
        buffer.writeString("\r\n")
        self.writer.writeAndFlush(buffer)
        if let pending = self.owner?.proxyTunnelOpened(), pending.readableBytes > 0 {
            self.tunnelBacklog.append(pending)
        }
        // Client bytes wait until the upstream connection's HTTP codec is gone (``upstreamTunnelReady()``).
    }

    func upstreamTunnelReady() {
        self.tunnelReady = true
        let backlog = self.tunnelBacklog
        self.tunnelBacklog = []
        for bytes in backlog { self.tunnelSend(bytes) }
    }

    private var tunnelReady = false
    private var tunnelBacklog: [ByteBuffer] = []

    /// Client bytes of the tunnel, to the upstream.
    func tunnelSend(_ bytes: ByteBuffer) {
        guard self.tunnel, !self.finished, let connection = self.connection else { return }
        guard self.tunnelReady else {
            self.tunnelBacklog.append(bytes)
            return
        }
        connection.sendRaw(bytes)
        if !connection.isWritable { self.owner?.setClientReading(false) }
    }

    func upstreamTunnelBytes(_ bytes: ByteBuffer) {
        guard self.tunnel, !self.finished else { return }
        self.writer.writeAndFlush(bytes)
        if !self.writer.isWritable { self.connection?.setReading(false) }
    }

    // MARK: - Helpers

    /// A response without a length, to an HTTP/1.0 client: it ends with the connection.
    private var closeDelimited = false

    private func fail(_ error: GatewayError) {
        guard !self.finished else { return }
        self.finished = true
        self.timers.clear(self.timerID)
        if let connection = self.connection {
            connection.responder = nil
            connection.close()
        }
        self.owner?.proxyFailed(error)
    }

    private static func connectError(_ error: any Error) -> GatewayError {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return GatewayError(.gatewayTimeout, "upstream connect timed out")
        }
        return GatewayError(.badGateway, "upstream unavailable")
    }
}

@available(*, unavailable)
extension ProxyExchange: Sendable {}
