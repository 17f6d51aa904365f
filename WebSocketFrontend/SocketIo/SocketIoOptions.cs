using System.ComponentModel.DataAnnotations;

namespace WebSocketFrontend.SocketIo;

/// <summary>Settings of the Socket.IO endpoint, section <c>SocketIo</c>.</summary>
public sealed class SocketIoOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "SocketIo";

    /// <summary>The path the endpoint is served at (default <c>/socket.io/</c>, the path every Socket.IO client uses).</summary>
    [Required]
    public string Path { get; set; } = "/socket.io/";

    /// <summary>Whether Engine.IO v3 (Socket.IO v2 clients) is served besides v4 (default true).</summary>
    public bool AllowEio3 { get; set; } = true;

    /// <summary>How often the server pings an Engine.IO v4 client, and how often a v3 client is told to ping (default 25 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>How long a pong (v4) or the next ping (v3, on top of the interval) may take before the connection is closed (default 20 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How long an Engine.IO session may stay open without a Socket.IO CONNECT to <c>/</c> (default 45 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// Browser origins (<c>https://app.example.com</c>, or <c>*</c>) whose pages may use HTTP long-polling across
    /// origins; empty by default: same origin only. Such an origin must also pass <c>Protocol:AllowedOrigins</c>.
    /// </summary>
    public List<string> CorsOrigins { get; set; } = [];
}
