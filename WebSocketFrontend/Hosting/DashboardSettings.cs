namespace WebSocketFrontend.Hosting;

/// <summary>The Orleans Dashboard, section <c>Dashboard</c>.</summary>
public sealed class DashboardSettings
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Dashboard";

    /// <summary>Where the frontend serves the dashboard.</summary>
    public const string Path = "/dashboard";

    /// <summary>
    /// Serves the Orleans Dashboard at <c>/dashboard</c>, behind the admin key (default false: it shows
    /// grain types, silos and call rates, and its collection costs every silo a little CPU).
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>True when <c>Dashboard:Enabled</c> is set in <paramref name="configuration"/>.</summary>
    public static bool IsEnabled(IConfiguration configuration) =>
        configuration.GetSection(Section).Get<DashboardSettings>()?.Enabled ?? false;
}
