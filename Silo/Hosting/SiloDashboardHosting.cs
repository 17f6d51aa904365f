using Grains.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

namespace Silo.Hosting;

/// <summary>The admin keys a silo's dashboard accepts, section <c>Api</c> as on the frontends.</summary>
public sealed class SiloAdminKeySettings
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Api";

    /// <summary>The bearer key the dashboard requires (default unset: the dashboard then answers 404, as on the frontends).</summary>
    public string? AdminKey { get; set; }

    /// <summary>A second key also accepted while operators roll the admin key over (default unset).</summary>
    public string? PreviousAdminKey { get; set; }
}

/// <summary>
/// Builds the standalone silo's host: a generic host with no HTTP listener, or, with <c>Dashboard:Enabled</c>,
/// a web host whose one listener (<c>Dashboard:Urls</c>) serves the Orleans Dashboard at <c>/dashboard</c>
/// behind the admin key. Nothing else is served there.
/// </summary>
public static partial class SiloDashboardHosting
{
    /// <summary>The silo's host, configured by <paramref name="args"/>, <c>appsettings.json</c> and the environment.</summary>
    public static IHost BuildSilo(string[] args)
    {
        // appsettings.json and relative paths are found next to the silo, wherever it is started from.
        var contentRoot = ContentRoot.Resolve(args);
        var plain = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = contentRoot });
        var dashboard = SiloDashboardSettings.Read(plain.Configuration);
        if (!dashboard.Enabled)
        {
            plain.AddStandaloneSilo();
            return plain.Build();
        }

        // Only a web host opens an HTTP port, so it is built only when the dashboard is on; the builder
        // above served to read the configuration, which this one reads again from the same sources.
        var web = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = contentRoot });
        web.AddStandaloneSilo();
        web.WebHost.UseUrls(dashboard.Addresses());
        web.Services.AddOptions<SiloAdminKeySettings>()
            .Bind(web.Configuration.GetSection(SiloAdminKeySettings.Section))
            .Validate(o => string.IsNullOrEmpty(o.PreviousAdminKey) || (!string.IsNullOrEmpty(o.AdminKey) && o.AdminKey != o.PreviousAdminKey),
                "Api:PreviousAdminKey needs an Api:AdminKey that differs from it.")
            .ValidateOnStart();
        var app = web.Build();
        if (string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<SiloAdminKeySettings>>().Value.AdminKey))
        {
            LogNoAdminKey(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(SiloDashboardHosting).FullName!));
        }

        app.UseWhen(
            static c => c.Request.Path.StartsWithSegments(SiloDashboardSettings.Path),
            static branch => branch.Use(RequireAdminKeyAsync));
        app.MapOrleansDashboard(routePrefix: SiloDashboardSettings.Path);
        return app;
    }

    /// <summary>
    /// As on the frontends: 404 while no admin key is configured (the page is off), 401 with
    /// <c>WWW-Authenticate: Bearer</c> without a valid key; both with a problem-details body.
    /// </summary>
    private static async Task RequireAdminKeyAsync(HttpContext context, RequestDelegate next)
    {
        var keys = context.RequestServices.GetRequiredService<IOptions<SiloAdminKeySettings>>().Value;
        if (string.IsNullOrEmpty(keys.AdminKey))
        {
            await Refuse(StatusCodes.Status404NotFound, "not_found", "Not found.").ExecuteAsync(context);
            return;
        }

        if (!AdminKey.IsPresented(context.Request.Headers.Authorization.ToString(), keys.AdminKey, keys.PreviousAdminKey))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Refuse(StatusCodes.Status401Unauthorized, "unauthorized", "A valid 'Authorization: Bearer <admin key>' header is required.").ExecuteAsync(context);
            return;
        }

        await next(context);
    }

    private static IResult Refuse(int status, string code, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, extensions: new Dictionary<string, object?> { ["code"] = code });

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dashboard:Enabled is set but Api:AdminKey is not: the dashboard answers 404 until a key is configured")]
    private static partial void LogNoAdminKey(ILogger logger);
}
