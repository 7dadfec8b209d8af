import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import { Loading } from "../components/Loading";
import { ErrorPanel } from "../components/ErrorPanel";
import { PreferenceEditor } from "../components/PreferenceEditor";
import { formatTime } from "../format";
import type { Preference } from "../api/types";

type Editing = { mode: "new" } | { mode: "edit"; pref: Preference } | null;

export function PreferencesPage() {
  const client = useQueryClient();
  const [editing, setEditing] = useState<Editing>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const prefs = useQuery({ queryKey: ["preferences", "list"], queryFn: () => api.get("/api/preferences") });
  const remove = useMutation({
    mutationFn: (key: string) => api.delete("/api/preferences/{key}", { path: { key } }),
    onSuccess: () => {
      setConfirming(null);
      void client.invalidateQueries({ queryKey: ["preferences"] });
    },
  });

  return (
    <div className="page">
      <header className="page-header">
        <h1>Preferences</h1>
        <p className="muted">
          Your own settings, stored by the app under your user id. Nobody else can read them. The <code>theme</code>{" "}
          preference (<code>"light"</code> or <code>"dark"</code>) switches this UI.
        </p>
      </header>
      <section className="card" aria-labelledby="prefs-h">
        <div className="card-header">
          <h2 id="prefs-h">Your preferences</h2>
          <button
            type="button"
            className="button primary"
            onClick={() => setEditing({ mode: "new" })}
            data-track="pref-new"
          >
            New preference
          </button>
        </div>
        {editing?.mode === "new" && <PreferenceEditor onDone={() => setEditing(null)} />}
        {remove.isError && <ErrorPanel error={remove.error} />}
        {prefs.isPending ? (
          <Loading label="Loading preferences…" />
        ) : prefs.isError ? (
          <ErrorPanel error={prefs.error} onRetry={() => void prefs.refetch()} />
        ) : prefs.data.items.length === 0 ? (
          <p className="muted" data-testid="prefs-empty">
            You have no preferences yet.
          </p>
        ) : (
          <table className="table" data-testid="prefs-table">
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {prefs.data.items.map((p) => (
                <tr key={p.key} data-key={p.key}>
                  <td>
                    <code>{p.key}</code>
                  </td>
                  <td>
                    <code className="value-preview">{JSON.stringify(p.value)}</code>
                  </td>
                  <td className="muted small">{formatTime(p.updated_at)}</td>
                  <td className="actions">
                    {editing?.mode === "edit" && editing.pref.key === p.key ? null : (
                      <button
                        type="button"
                        className="button secondary"
                        onClick={() => setEditing({ mode: "edit", pref: p })}
                        aria-label={`Edit ${p.key}`}
                        data-track="pref-edit"
                      >
                        Edit
                      </button>
                    )}
                    {confirming === p.key ? (
                      <>
                        <button
                          type="button"
                          className="button danger"
                          onClick={() => remove.mutate(p.key)}
                          disabled={remove.isPending}
                          aria-label={`Confirm delete ${p.key}`}
                          data-track="pref-delete-confirm"
                        >
                          {remove.isPending ? "Deleting…" : "Confirm delete"}
                        </button>
                        <button type="button" className="button secondary" onClick={() => setConfirming(null)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <button
                        type="button"
                        className="button secondary"
                        onClick={() => setConfirming(p.key)}
                        aria-label={`Delete ${p.key}`}
                        data-track="pref-delete"
                      >
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {editing?.mode === "edit" && (
          <PreferenceEditor key={editing.pref.key} existing={editing.pref} onDone={() => setEditing(null)} />
        )}
      </section>
    </div>
  );
}
