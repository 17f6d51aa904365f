using Microsoft.Data.Sqlite;

namespace Tests.Infrastructure;

/// <summary>A SQLite file of its own for one test or fixture, removed afterwards.</summary>
public sealed class TempDatabase : IDisposable
{
    private readonly string _folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cm-tests", Guid.NewGuid().ToString("N"));

    public TempDatabase()
    {
        Directory.CreateDirectory(_folder);
        Path = System.IO.Path.Combine(_folder, "clients.db");
    }

    public string Path { get; }

    /// <summary>Every stored row, in key order, as text: a fingerprint to prove that nothing changed.</summary>
    public string Snapshot()
    {
        using var connection = new SqliteConnection($"Data Source={Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText =
            "SELECT GrainType, GrainIdN0, GrainIdN1, GrainIdExtension, Version, CAST(Payload AS TEXT) FROM GrainState " +
            "ORDER BY GrainType, GrainIdN0, GrainIdN1, GrainIdExtension";
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            var values = new object[reader.FieldCount];
            reader.GetValues(values);
            rows.Add(string.Join('|', values));
        }

        return string.Join('\n', rows);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A process that still holds the file keeps it until it exits; the folder is under the temp root.
        }
    }
}
