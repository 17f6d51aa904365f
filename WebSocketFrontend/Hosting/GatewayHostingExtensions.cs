using Grains.Interfaces;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace WebSocketFrontend.Hosting;

/// <summary>The WebSocket front end: options, sessions, endpoints.</summary>
public static class GatewayHostingExtensions
{
    /// <summary>Registers the protocol, the session machinery and the health checks.</summary>
    public static WebApplicationBuilder AddGatewayProtocol(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ProtocolOptions>()
            .Bind(builder.Configuration.GetSection(ProtocolOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.ReplyEvent is "instace.to.client" or "instance.to.client",
                "Protocol:ReplyEvent must be \"instace.to.client\" (the specification's spelling) or \"instance.to.client\".")
            .Validate(o => Enum.IsDefined(o.ClientSend), "Protocol:ClientSend must be \"contacts\", \"any\" or \"none\".")
            .Validate(o => o.OutboxBytes >= MinOutboxBytes(o, builder.Configuration),
                "Protocol:OutboxBytes must hold a whole client queue (ClientStore:MaxQueuedBytes, about 256 bytes more per response) " +
                "besides Protocol:MaxInformationBytes and Protocol:MaxMessageBytes: a client logging in with a full queue would otherwise be closed every time.")
            .ValidateOnStart();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<FrontendIdentity>();
        builder.Services.AddSingleton<ReplyWriter>();
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.Services.AddOptions<ApiOptions>().Bind(builder.Configuration.GetSection(ApiOptions.Section))
            .Validate(o => string.IsNullOrEmpty(o.PreviousAdminKey) || (!string.IsNullOrEmpty(o.AdminKey) && o.AdminKey != o.PreviousAdminKey),
                "Api:PreviousAdminKey needs an Api:AdminKey that differs from it.")
            .ValidateOnStart();
        builder.Services.AddSingleton<DirectoryUpdates>();
        builder.Services.AddSingleton<RequestHandler>();
        builder.Services.TryAddSingleton<Grains.LocalSessionObservers>();
        builder.Services.AddSingleton<FrontendObserver>();
        builder.Services.AddHostedService<SessionRenewalService>();
        builder.Services.AddSingleton<SessionServices>();
        builder.Services.AddSingleton<SessionRegistry>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SessionRegistry>());
        builder.Services.AddHealthChecks()
            .AddCheck<StorageHealthCheck>("storage", tags: ["ready"]);
        return builder;
    }

    /// <summary>The smallest outbox that takes a login with a full queue (its page, the pushes behind it, their envelopes).</summary>
    private static long MinOutboxBytes(ProtocolOptions options, IConfiguration configuration)
    {
        var store = configuration.GetSection(Grains.ClientStoreOptions.Section).Get<Grains.ClientStoreOptions>() ?? new Grains.ClientStoreOptions();
        return store.MaxQueuedBytes + (store.MaxQueuedResponses * 256L) + options.MaxInformationBytes + options.MaxMessageBytes;
    }

    /// <summary>Maps <c>/ws</c> and the health endpoints.</summary>
    public static WebApplication MapGateway(this WebApplication app)
    {
        app.UseGatewayEdge();

        // Before the WebSocket middleware, which takes the upgraded connection from the features this wraps.
        app.Use(static (context, next) => ControlFrameMonitor.AttachAsync(context, next));
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.Map("/ws", static async (HttpContext context, SessionRegistry registry, SessionServices services) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                return Results.BadRequest("This endpoint speaks WebSocket only.");
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            // The registry disposes the session (and its transport) once it has closed.
            var transport = new WebSocketTransport(socket, services, context.Features.Get<ControlFrameMonitor>(), context.Connection.RemoteIpAddress);
            await registry.ServeAsync(new ClientSession(transport, services), context.RequestAborted);
            return Results.Empty;
        }).RequireEdgeAdmission();
        app.MapClientApi();
        app.MapGatewayOperators();
        var registry = app.Services.GetRequiredService<SessionRegistry>();
        app.Services.GetRequiredService<GatewayMetrics>().Observe(registry);
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") });
        return app;
    }

    /// <summary>Ready means a grain answers and its storage read works.</summary>
    private sealed class StorageHealthCheck(IGrainFactory grains) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                await grains.Grain<IClientGrain>("health-probe").Get().WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return HealthCheckResult.Unhealthy("The cluster or its storage does not answer.", ex);
            }
        }
    }
}
