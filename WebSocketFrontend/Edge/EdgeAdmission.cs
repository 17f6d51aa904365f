using System.Globalization;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Edge;

/// <summary>
/// Decides, before any upgrade, whether a connection may be opened: its origin, the frontend's total
/// of connections, and its address's share and rate. Every transport endpoint uses this one service
/// (see <see cref="EdgeHostingExtensions.RequireEdgeAdmission{TBuilder}(TBuilder)"/>).
/// </summary>
public sealed partial class EdgeAdmission
{
    private readonly AddressBudgets _budgets;
    private readonly OriginPolicy _origins;
    private readonly ILogger<EdgeAdmission> _logger;
    private readonly EdgeMetrics _metrics;
    private int _open;

    public EdgeAdmission(AddressBudgets budgets, IOptions<LimitsOptions> limits, IOptions<ProtocolOptions> protocol, ILogger<EdgeAdmission> logger, EdgeMetrics metrics)
    {
        _budgets = budgets;
        _metrics = metrics;
        _logger = logger;
        _origins = new OriginPolicy(protocol.Value.AllowedOrigins);
        var soft = FileDescriptorLimit.ReadSoftLimit();
        MaxConnections = limits.Value.MaxConnections ?? FileDescriptorLimit.DefaultMaxConnections(soft);
        LogCap(logger, MaxConnections, limits.Value.MaxConnections is null ? $"file-descriptor limit {soft?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}" : "Limits:MaxConnections");
    }

    /// <summary>The total of connections this frontend accepts.</summary>
    public int MaxConnections { get; }

    /// <summary>Connections admitted and not yet ended.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Admits the request or says why not; the returned slot must be disposed when the connection ends.</summary>
    public IDisposable? TryAdmit(HttpContext context, out AdmissionRefusal refusal)
    {
        var request = context.Request;
        if (!_origins.Allows(request.Headers.Origin.Count > 0 ? request.Headers.Origin.ToString() : null, request.Host.Value, request.IsHttps))
        {
            refusal = new AdmissionRefusal(AdmissionReason.Origin, TimeSpan.Zero);
            return Refused(context, refusal);
        }

        if (Interlocked.Increment(ref _open) > MaxConnections)
        {
            Interlocked.Decrement(ref _open);
            refusal = new AdmissionRefusal(AdmissionReason.Connections, TimeSpan.FromSeconds(5));
            return Refused(context, refusal);
        }

        var lease = _budgets.TryOpenConnection(context.Connection.RemoteIpAddress, out refusal);
        if (lease is null)
        {
            Interlocked.Decrement(ref _open);
            return Refused(context, refusal);
        }

        return new Slot(this, lease);
    }

    /// <summary>The HTTP status of a refusal.</summary>
    public static int StatusOf(AdmissionReason reason) => reason switch
    {
        AdmissionReason.Origin => StatusCodes.Status403Forbidden,
        AdmissionReason.Connections => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status429TooManyRequests,
    };

    /// <summary>Writes the refusal: its status, <c>Retry-After</c> unless the origin was refused, and a short JSON reason.</summary>
    public static Task WriteRefusalAsync(HttpContext context, AdmissionRefusal refusal)
    {
        var response = context.Response;
        response.StatusCode = StatusOf(refusal.Reason);
        if (refusal.Reason != AdmissionReason.Origin)
        {
            response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(refusal.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        var (code, message) = refusal.Reason switch
        {
            AdmissionReason.Origin => (ErrorCodes.Forbidden, "This origin may not open a connection."),
            AdmissionReason.Connections => (ErrorCodes.Unavailable, "The server holds as many connections as it accepts; retry later."),
            _ => (ErrorCodes.RateLimited, "Too many connections from this address; retry later."),
        };
        return response.WriteAsJsonAsync(new { code, message });
    }

    private Slot? Refused(HttpContext context, AdmissionRefusal refusal)
    {
        _metrics.CountRefused(refusal.Reason);
        LogRefused(_logger, context.Connection.RemoteIpAddress?.ToString() ?? "unknown", EdgeMetrics.Label(refusal.Reason));
        return null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Admitting at most {MaxConnections} connections (from {Source})")]
    private static partial void LogCap(ILogger logger, int maxConnections, string source);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Refused a connection from {Address}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string address, string reason);

    private sealed class Slot(EdgeAdmission owner, ConnectionLease lease) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            lease.Dispose();
            Interlocked.Decrement(ref owner._open);
        }
    }
}

/// <summary>Marks an endpoint whose requests go through <see cref="EdgeAdmission"/> before they reach it.</summary>
public sealed class EdgeAdmissionMetadata
{
    public static readonly EdgeAdmissionMetadata Instance = new();

    /// <summary>Requests that are part of a connection admitted before (a Socket.IO session's polls), which pass unchecked.</summary>
    public Func<HttpContext, bool>? Exempt { get; init; }
}

/// <summary>
/// The admission slot of the current request, a request feature. An endpoint whose connection outlives the
/// request (a Socket.IO polling session) takes it over and disposes it when the connection ends.
/// </summary>
public sealed class EdgeAdmissionSlot(IDisposable slot)
{
    private IDisposable? _slot = slot;

    /// <summary>Takes ownership of the slot; the middleware no longer releases it with the request.</summary>
    public IDisposable? Take() => Interlocked.Exchange(ref _slot, null);

    internal void Release() => Take()?.Dispose();
}

/// <summary>Runs <see cref="EdgeAdmission"/> for endpoints marked with <see cref="EdgeAdmissionMetadata"/>, and holds the slot until the connection ends.</summary>
public sealed class EdgeAdmissionMiddleware(RequestDelegate next, EdgeAdmission admission)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var metadata = context.GetEndpoint()?.Metadata.GetMetadata<EdgeAdmissionMetadata>();
        if (metadata is null || metadata.Exempt?.Invoke(context) == true)
        {
            await next(context);
            return;
        }

        var slot = admission.TryAdmit(context, out var refusal);
        if (slot is null)
        {
            await EdgeAdmission.WriteRefusalAsync(context, refusal);
            return;
        }

        var held = new EdgeAdmissionSlot(slot);
        context.Features.Set(held);
        try
        {
            await next(context);
        }
        finally
        {
            held.Release();
        }
    }
}
