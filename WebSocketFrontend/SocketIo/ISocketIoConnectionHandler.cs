namespace WebSocketFrontend.SocketIo;

/// <summary>
/// Serves one Socket.IO connection once its client has connected to the namespace <c>/</c>. The endpoint calls
/// <see cref="RunAsync"/> once per connection; when it returns, the connection is closed.
/// </summary>
public interface ISocketIoConnectionHandler
{
    /// <summary>
    /// Reads the connection's events and answers them until it closes. <paramref name="cancellationToken"/>
    /// is cancelled when the connection closes (any reason) or the server stops.
    /// </summary>
    Task RunAsync(SocketIoConnection connection, CancellationToken cancellationToken);
}
