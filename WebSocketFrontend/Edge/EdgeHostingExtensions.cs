using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Edge;

/// <summary>The edge of the gateway: who may connect, and what each address may cost, before any session work.</summary>
public static class EdgeHostingExtensions
{
    /// <summary>Registers the limits, the per-address budgets, admission and the trusted proxies.</summary>
    public static WebApplicationBuilder AddGatewayEdge(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<LimitsOptions>()
            .Bind(builder.Configuration.GetSection(LimitsOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.TrustedProxies.All(p => TryParseNetwork(p, out _)),
                "Limits:TrustedProxies must hold IP addresses or CIDR networks (10.0.0.0/8).")
            .ValidateOnStart();
        builder.Services.AddOptions<ProtocolOptions>()
            .Validate(o => o.AllowedOrigins.All(OriginPolicy.IsValidEntry),
                "Protocol:AllowedOrigins must hold \"*\" or origins such as \"https://app.example.com\" (scheme, host, optional port).")
            .Validate(o => o.RegistrationKey is null || o.RegistrationKey.Length >= 16,
                "Protocol:RegistrationKey must be at least 16 characters long when set.");
        builder.Services.AddOptions<MetricsOptions>()
            .Bind(builder.Configuration.GetSection(MetricsOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<AddressBudgets>();
        builder.Services.AddSingleton<EdgeMetrics>();
        builder.Services.AddSingleton<EdgeAdmission>();

        // Only configured proxies are believed; ASP.NET Core's default of trusting loopback is cleared,
        // so that a client on the same host cannot claim any address it likes.
        builder.Services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<LimitsOptions>>((forwarded, limits) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            forwarded.ForwardLimit = null;
            foreach (var entry in limits.Value.TrustedProxies)
            {
                if (TryParseNetwork(entry, out var network))
                {
                    forwarded.KnownIPNetworks.Add(network);
                }
            }
        });
        return builder;
    }

    /// <summary>
    /// Adds the edge middleware: forwarded headers from trusted proxies, quiet handling of expected
    /// bad requests, and admission for the endpoints that ask for it.
    /// </summary>
    public static WebApplication UseGatewayEdge(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<LimitsOptions>>().Value.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders();
        }

        app.UseMiddleware<ExpectedBadRequestMiddleware>();
        app.UseMiddleware<EdgeAdmissionMiddleware>();
        var metrics = app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value;
        if (metrics.RequireAdminKey || metrics.Port is not null)
        {
            var api = app.Services.GetRequiredService<IOptions<ApiOptions>>().Value;
            app.UseWhen(c => c.Request.Path.StartsWithSegments("/metrics"), branch => branch.Use(async (context, next) =>
            {
                if (metrics.Port is { } port && context.Connection.LocalPort != port)
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return;
                }

                if (metrics.RequireAdminKey && string.IsNullOrEmpty(api.AdminKey))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return;
                }

                if (metrics.RequireAdminKey && !api.IsPresentedBy(context.Request))
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    return;
                }

                await next(context);
            }));
        }

        return app;
    }

    /// <summary>Puts an endpoint (a transport: <c>/ws</c>, <c>/socket.io/</c>) behind <see cref="EdgeAdmission"/>.</summary>
    public static TBuilder RequireEdgeAdmission<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(EdgeAdmissionMetadata.Instance);

    /// <summary>
    /// Puts an endpoint behind <see cref="EdgeAdmission"/> except for the requests <paramref name="exempt"/> picks:
    /// those that continue a connection admitted before (an admitted request may keep its slot, see <see cref="EdgeAdmissionSlot"/>).
    /// </summary>
    public static TBuilder RequireEdgeAdmission<TBuilder>(this TBuilder builder, Func<HttpContext, bool> exempt)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new EdgeAdmissionMetadata { Exempt = exempt });

    private static bool TryParseNetwork(string entry, out System.Net.IPNetwork network)
    {
        entry = entry.Trim();
        if (IPAddress.TryParse(entry, out var address))
        {
            network = new System.Net.IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        return System.Net.IPNetwork.TryParse(entry, out network);
    }
}
