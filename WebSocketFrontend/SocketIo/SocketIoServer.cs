using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.SocketIo;

/// <summary>The Engine.IO errors an HTTP request gets, with the codes and messages of the reference server.</summary>
internal enum SocketIoError
{
    TransportUnknown = 0,
    SessionIdUnknown = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    UnsupportedProtocolVersion = 5,
}

/// <summary>
/// The Engine.IO server: routes each request of the Socket.IO endpoint to its session, opens sessions, and
/// runs the <see cref="ISocketIoConnectionHandler"/> of each connection to <c>/</c>.
/// </summary>
public sealed partial class SocketIoServer : IHostedService
{
    private readonly ConcurrentDictionary<string, SocketIoConnection> _sessions = new(StringComparer.Ordinal);
    private readonly IServiceProvider _services;
    private readonly OriginPolicy _cors;
    private readonly ILogger<SocketIoServer> _logger;
    private readonly long _started;

    public SocketIoServer(IOptions<SocketIoOptions> options, IOptions<ProtocolOptions> protocol, TimeProvider time, IServiceProvider services, ILogger<SocketIoServer> logger)
    {
        Options = options.Value;
        Time = time;
        _started = time.GetTimestamp();
        _services = services;
        _logger = logger;
        _cors = new OriginPolicy(Options.CorsOrigins);
        MaxPayload = protocol.Value.MaxMessageBytes;
        MaxBufferedBytes = protocol.Value.OutboxBytes;
    }

    internal SocketIoOptions Options { get; }

    internal TimeProvider Time { get; }

    /// <summary>The time since the server started, by <see cref="Time"/>: what heartbeat deadlines are kept in.</summary>
    internal TimeSpan Now => Time.GetElapsedTime(_started);

    /// <summary>The largest packet or polling body a client may send: <c>Protocol:MaxMessageBytes</c>.</summary>
    internal int MaxPayload { get; }

    /// <summary>The most a connection holds unsent: <c>Protocol:OutboxBytes</c>.</summary>
    internal long MaxBufferedBytes { get; }

    /// <summary>Engine.IO sessions open now.</summary>
    public int Count => _sessions.Count;

    /// <summary>Serves one request of the endpoint.</summary>
    internal async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var corsAllowed = ApplyCors(context);
        if (HttpMethods.IsOptions(request.Method))
        {
            context.Response.StatusCode = corsAllowed ? StatusCodes.Status204NoContent : StatusCodes.Status403Forbidden;
            return;
        }

        var transport = QueryValue(request, "transport");
        if (transport is not ("polling" or "websocket"))
        {
            await WriteErrorAsync(context, SocketIoError.TransportUnknown);
            return;
        }

        var version = QueryValue(request, "EIO") switch
        {
            "4" => 4,
            "3" when Options.AllowEio3 => 3,
            _ => 0,
        };
        if (version == 0)
        {
            await WriteErrorAsync(context, SocketIoError.UnsupportedProtocolVersion);
            return;
        }

        var sid = QueryValue(request, "sid");
        var webSocket = transport == "websocket";
        if (webSocket && !context.WebSockets.IsWebSocketRequest)
        {
            await WriteErrorAsync(context, SocketIoError.BadRequest);
            return;
        }

        if (string.IsNullOrEmpty(sid))
        {
            if (!HttpMethods.IsGet(request.Method))
            {
                await WriteErrorAsync(context, SocketIoError.BadHandshakeMethod);
                return;
            }

            var connection = new SocketIoConnection(this, NewId(), version, webSocket, context.Connection.RemoteIpAddress,
                context.Features.Get<EdgeAdmissionSlot>()?.Take());
            _sessions[connection.Id] = connection;
            connection.Open();
            if (webSocket)
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync();
                await connection.RunWebSocketAsync(socket, upgrade: false, context.RequestAborted);
            }
            else
            {
                await connection.ServePollAsync(context);
            }

            return;
        }

        if (!_sessions.TryGetValue(sid, out var session) || session.EngineVersion != version)
        {
            await WriteErrorAsync(context, SocketIoError.SessionIdUnknown);
            return;
        }

        if (webSocket)
        {
            if (!HttpMethods.IsGet(request.Method) || !session.TryBeginUpgrade())
            {
                await WriteErrorAsync(context, SocketIoError.BadRequest);
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await session.RunWebSocketAsync(socket, upgrade: true, context.RequestAborted);
        }
        else if (HttpMethods.IsGet(request.Method))
        {
            await session.ServePollAsync(context);
        }
        else if (HttpMethods.IsPost(request.Method))
        {
            await session.ServePostAsync(context);
        }
        else
        {
            await WriteErrorAsync(context, SocketIoError.BadRequest);
        }
    }

    /// <summary>
    /// A query parameter as <c>request.Query[name].ToString()</c> reads it (name matched ignoring case, values joined by
    /// commas, empty when absent), taken from the query string: the parsed query would stay with the request, which
    /// lives as long as a WebSocket connection does.
    /// </summary>
    internal static string QueryValue(HttpRequest request, string name)
    {
        string? value = null;
        foreach (var pair in new QueryStringEnumerable(request.QueryString.Value))
        {
            if (pair.DecodeName().Span.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                var decoded = pair.DecodeValue().ToString();
                value = value is null ? decoded : string.Concat(value, ",", decoded);
            }
        }

        return value ?? string.Empty;
    }

    /// <summary>Whether the query string names a parameter, ignoring case, as <c>request.Query.ContainsKey(name)</c> does.</summary>
    internal static bool HasQueryValue(HttpRequest request, string name)
    {
        foreach (var pair in new QueryStringEnumerable(request.QueryString.Value))
        {
            if (pair.DecodeName().Span.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether the request may be answered across origins; grants it with the CORS headers when it may.</summary>
    private bool ApplyCors(HttpContext context)
    {
        var request = context.Request;
        if (request.Headers.Origin.Count == 0)
        {
            return true;
        }

        var origin = request.Headers.Origin.ToString();
        var response = context.Response;
        response.Headers.Vary = "Origin";
        if (IsSameOrigin(origin, request) || (Options.CorsOrigins.Count > 0 && _cors.Allows(origin, host: null, request.IsHttps)))
        {
            response.Headers.AccessControlAllowOrigin = origin;
            response.Headers.AccessControlAllowCredentials = "true";
            if (HttpMethods.IsOptions(request.Method))
            {
                response.Headers.AccessControlAllowMethods = "GET, POST";
                if (request.Headers.AccessControlRequestHeaders.Count > 0)
                {
                    response.Headers.AccessControlAllowHeaders = request.Headers.AccessControlRequestHeaders;
                }
            }

            return true;
        }

        return false;
    }

    private static bool IsSameOrigin(string origin, HttpRequest request) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri)
        && string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);

    /// <summary>Runs the registered handler for a connection that has connected to <c>/</c>; it closes when the handler returns.</summary>
    internal void StartHandler(SocketIoConnection connection)
    {
        var handler = _services.GetService<ISocketIoConnectionHandler>();
        if (handler is null)
        {
            connection.Shut(SocketIoCloseReason.ServerDisconnect);
            return;
        }

        _ = RunHandlerAsync(handler, connection);
    }

    private async Task RunHandlerAsync(ISocketIoConnectionHandler handler, SocketIoConnection connection)
    {
        // Off the caller's thread, which is the connection's reader, as Task.Run would, without its closure.
        await Task.Yield();
        try
        {
            await handler.RunAsync(connection, connection.Closing);
        }
        catch (OperationCanceledException) when (connection.Closing.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogHandlerFailed(_logger, ex, connection.Id);
        }
        finally
        {
            connection.Shut(SocketIoCloseReason.ServerDisconnect);
        }
    }

    internal void Remove(SocketIoConnection connection, SocketIoCloseReason reason)
    {
        _sessions.TryRemove(new KeyValuePair<string, SocketIoConnection>(connection.Id, connection));
        LogClosed(_logger, connection.Id, reason);
    }

    /// <summary>A fresh id: 120 random bits, base64url.</summary>
    internal static string NewId()
    {
        Span<byte> bytes = stackalloc byte[15];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
    }

    internal static void PrepareTextResponse(HttpContext context)
    {
        context.Response.ContentType = "text/plain; charset=UTF-8";
        context.Response.Headers.CacheControl = "no-store";
    }

    /// <summary>Writes 400 with the Engine.IO error body, <c>{"code":N,"message":"..."}</c>.</summary>
    internal static Task WriteErrorAsync(HttpContext context, SocketIoError error)
    {
        var message = error switch
        {
            SocketIoError.TransportUnknown => "Transport unknown",
            SocketIoError.SessionIdUnknown => "Session ID unknown",
            SocketIoError.BadHandshakeMethod => "Bad handshake method",
            SocketIoError.UnsupportedProtocolVersion => "Unsupported protocol version",
            _ => "Bad request",
        };
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        return context.Response.WriteAsJsonAsync(new { code = (int)error, message });
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Closes every connection: each client gets a DISCONNECT and the Engine.IO close.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var connection in _sessions.Values)
        {
            connection.Shut(SocketIoCloseReason.ServerShutdown);
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The handler of Socket.IO connection {Id} failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Socket.IO connection {Id} closed: {Reason}")]
    private static partial void LogClosed(ILogger logger, string id, SocketIoCloseReason reason);
}
