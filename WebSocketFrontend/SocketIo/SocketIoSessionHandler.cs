using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace WebSocketFrontend.SocketIo;

/// <summary>Serves each Socket.IO connection with a <see cref="ClientSession"/>, as <c>/ws</c> serves each WebSocket.</summary>
public sealed class SocketIoSessionHandler(SessionRegistry registry, SessionServices services, IOptions<ProtocolOptions> options) : ISocketIoConnectionHandler
{
    private readonly ReplyWriter _replies = new(new SocketIoFrameFormat(options.Value.ReplyEvent));
    private readonly long _highWaterBytes = options.Value.MaxMessageBytes;

    /// <remarks>
    /// The session is not given <paramref name="cancellationToken"/>: it learns of every close from its transport, as a
    /// <c>/ws</c> session learns of its peer's close from the socket (the connection's events end, its sends fail, its
    /// close is done), and ends in order. Aborting it on each close instead, as the token would, made every await of
    /// the session throw at each ordinary close: two to three exceptions per connection, a cost of every connect-login.
    /// </remarks>
    public Task RunAsync(SocketIoConnection connection, CancellationToken cancellationToken) =>
        registry.ServeAsync(new ClientSession(new SocketIoTransport(connection, _replies, _highWaterBytes, services.Metrics), services), CancellationToken.None);
}
