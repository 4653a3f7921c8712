import CometCore
import NIOCore

/// A stream hold's next link (`Grip-Link: <URI>; rel=next; timeout=SECONDS`): when the timeout passes, the gateway
/// asks the application for the link (a ``ProxyExchange/Fetch`` on the hold's upstream) and continues the stream with
/// the answer: a new stream instruction's body is appended and its channels held from then on; any other answer's
/// body is appended and the stream ends. A failed request is tried again after the same timeout.
final class GripNextLink: ProxyExchangeOwner, DeadlineOwner {
    /// The request that made the hold (its headers go with every link request).
    let request: RequestHead
    let upstream: ProxyConfiguration.Upstream
    /// The current link.
    var link: GripInstruction.NextLink
    private weak var handler: HTTPConnectionHandler?
    private let timers: ConnectionTimers
    private let timerID: UInt64
    private let loop: any EventLoop
    /// The link request in flight.
    var exchange: ProxyExchange?

    init(request: RequestHead, upstream: ProxyConfiguration.Upstream, link: GripInstruction.NextLink,
         handler: HTTPConnectionHandler, timers: ConnectionTimers, loop: any EventLoop) {
        self.request = request
        self.upstream = upstream
        self.link = link
        self.handler = handler
        self.timers = timers
        self.timerID = timers.makeID()
        self.loop = loop
    }

    /// Requests the link `link.timeout` seconds from now.
    func arm() {
        let at = Int64(self.loop.now.uptimeNanoseconds) + Int64(self.link.timeout) * 1_000_000_000
        self.timers.set(self.timerID, at: at, owner: self)
    }

    /// The stream ended: no more requests.
    func cancel() {
        self.timers.clear(self.timerID)
        self.exchange?.cancel()
        self.exchange = nil
    }

    func deadlineReached() {
        self.handler?.followNextLink(self)
    }

    // MARK: - ProxyExchangeOwner (the link request)

    func proxyInstructed(_ instruction: GripInstruction, request: RequestHead, upstream: ProxyConfiguration.Upstream) {
        self.exchange = nil
        self.handler?.continueStream(instruction, next: self)
    }

    func proxyFetched(_ response: GripInstruction.Response) {
        self.exchange = nil
        self.handler?.endStream(after: response)
    }

    func proxyFailed(_ error: GatewayError) {
        self.exchange = nil
        self.arm()
    }

    func proxyAborted() {
        self.exchange = nil
        self.arm()
    }

    func proxyFinished(keepAlive: Bool) {}  // a fetch's answer is never passed through

    func setClientReading(_ reading: Bool) {}  // a fetch has no client body

    func proxyTunnelOpened() -> ByteBuffer? { nil }  // a fetch is never an upgrade
}

@available(*, unavailable)
extension GripNextLink: Sendable {}
