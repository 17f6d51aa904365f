using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace WebSocketFrontend.SocketIo;

/// <summary>Serves each Socket.IO connection with a <see cref="ClientSession"/>, as <c>/ws</c> serves each WebSocket.</summary>
public sealed class SocketIoSessionHandler(SessionRegistry registry, SessionServices services, IOptions<ProtocolOptions> options) : ISocketIoConnectionHandler
{
    private readonly ReplyWriter _replies = new(new SocketIoFrameFormat(options.Value.ReplyEvent));
    private readonly long _highWaterBytes = options.Value.MaxMessageBytes;

    public Task RunAsync(SocketIoConnection connection, CancellationToken cancellationToken) =>
        registry.ServeAsync(new ClientSession(new SocketIoTransport(connection, _replies, _highWaterBytes), services), cancellationToken);
}
