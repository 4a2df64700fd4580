import Foundation
import PackagePlugin

/// Compiles the package's `Migrations/*.sql` into the target as Swift source.
@main
struct EmbedMigrationsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let dir = context.package.directoryURL.appending(path: "Migrations")
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) migrations",
                executable: try context.tool(named: "EmbedMigrations").url,
                // The tool lists the directory itself when it runs, so a migration added after
                // this plugin last ran is still embedded.
                arguments: [output.path, dir.path],
                // The directory too: adding a migration changes it, and must regenerate.
                inputFiles: [dir] + files,
                outputFiles: [output]
            )
        ]
    }
}
