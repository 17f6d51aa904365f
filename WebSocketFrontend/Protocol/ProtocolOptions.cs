using System.ComponentModel.DataAnnotations;

namespace WebSocketFrontend.Protocol;

/// <summary>Settings of the WebSocket protocol, section <c>Protocol</c>.</summary>
public sealed class ProtocolOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Protocol";

    /// <summary>The event of requests; anything else is a bad request.</summary>
    public const string RequestEvent = "client.to.instance";

    /// <summary>The event of every server message, spelled as the specification spells it.</summary>
    [Required]
    public string ReplyEvent { get; set; } = "instace.to.client";

    /// <summary>The largest envelope in bytes (default 64 KiB); a larger frame closes the socket with 1009.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 64 * 1024;

    /// <summary>The largest information object in UTF-8 bytes (default 8 KiB).</summary>
    [Range(2, 16 * 1024 * 1024)]
    public int MaxInformationBytes { get; set; } = 8 * 1024;

    /// <summary>The longest <c>name</c> or <c>location</c> in characters (default 256).</summary>
    [Range(1, 1 << 20)]
    public int MaxTextFieldLength { get; set; } = 256;

    /// <summary>How long a socket may stay silent before it is closed (default 120 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>How long a close handshake may take before the socket is aborted (default 5 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Requests per second one socket may sustain (default 1,000).</summary>
    [Range(1, 1_000_000)]
    public int RequestsPerSecond { get; set; } = 1000;

    /// <summary>Requests one socket may send in a burst above the sustained rate (default 2,000).</summary>
    [Range(1, 1_000_000)]
    public int RequestBurst { get; set; } = 2000;

    /// <summary>The largest response payload in UTF-8 bytes (default 16 KiB).</summary>
    [Range(2, 16 * 1024 * 1024)]
    public int MaxPayloadBytes { get; set; } = 16 * 1024;

    /// <summary>How often a frontend renews each logged-in session with its client's mailbox (default 30 s); three missed renewals end it.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan SessionRenewInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a frontend renews its lease on the online directory (default 10 s); three missed renewals drop its entries.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan DirectoryLeaseInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a frontend's directory lease lasts without renewal: three renewal periods.</summary>
    public TimeSpan DirectoryLease => DirectoryLeaseInterval * 3;

    /// <summary>How many ids one <c>online</c> page holds at most (default 1,000).</summary>
    [Range(1, 100_000)]
    public int MaxOnlinePage { get; set; } = 1000;

    /// <summary>
    /// Whether a logged-in client may list the online clients with <c>online</c> (default false:
    /// <c>forbidden</c>). Presence is private unless an operator opens it; <c>GET /api/online</c>
    /// always lists everyone.
    /// </summary>
    public bool ClientsMayListOnline { get; set; }

    /// <summary>
    /// Which clients a client may <c>send</c> to (default <see cref="ClientSendPolicy.Contacts"/>):
    /// the specification's own flows never send, and anything wider lets any client fill others'
    /// queues and find which ids exist.
    /// </summary>
    public ClientSendPolicy ClientSend { get; set; } = ClientSendPolicy.Contacts;

    /// <summary>Frames waiting to be written to one socket before it counts as too slow and is closed (default 1,024).</summary>
    [Range(1, 1_000_000)]
    public int OutboxCapacity { get; set; } = 1024;

    /// <summary>How long a socket may stay open without registering, logging in or passing a token check (default 30 s); then it is closed with 1008.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "1.00:00:00")]
    public TimeSpan AuthenticationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>When set, <c>register</c> needs it in <c>parameters.key</c> (else <c>forbidden</c>); unset by default, anyone may register.</summary>
    public string? RegistrationKey { get; set; }

    /// <summary>
    /// Browser origins (<c>https://app.example.com</c>) that may open a socket besides the gateway's own;
    /// <c>*</c> allows every origin. Requests without an <c>Origin</c> header (devices, servers) are always allowed.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// Bytes waiting to be written to one socket (default 4 MiB). A frame that would go over closes the socket
    /// with 1008; responses it had not received stay queued. It must hold a whole client queue and its login page.
    /// </summary>
    [Range(64 * 1024, 1024 * 1024 * 1024)]
    public int OutboxBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// Bytes of queued responses the <c>logged</c> reply carries at most (default 64 KiB); at least one always fits.
    /// The rest follows as <c>response</c> pushes.
    /// </summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int LoginPageBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// How many <c>rate_limited</c> answers one socket may get within <see cref="RateLimitedWindow"/> (default 100);
    /// one more closes it with 1008. Ping frames over the budget count as such answers.
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxRateLimitedBeforeClose { get; set; } = 100;

    /// <summary>The window <see cref="MaxRateLimitedBeforeClose"/> counts in (default 10 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan RateLimitedWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a message may take from its first fragment to its last before the socket is closed with 1008 (default 10 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan FrameTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Who a client may send to, setting <c>Protocol:ClientSend</c>.</summary>
public enum ClientSendPolicy
{
    /// <summary>Only the clients a back end linked to it as contacts; any other id answers <c>not_found</c>.</summary>
    Contacts,

    /// <summary>Any client.</summary>
    Any,

    /// <summary>No one: <c>send</c> answers <c>forbidden</c>, and only back ends send.</summary>
    None,
}
