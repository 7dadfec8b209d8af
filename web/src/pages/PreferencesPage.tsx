import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import { Loading } from "../components/Loading";
import { ErrorPanel } from "../components/ErrorPanel";
import { PreferenceEditor } from "../components/PreferenceEditor";
import { PreferenceSettings } from "../components/PreferenceSettings";
import { KNOWN_KEYS, usePreferenceList } from "../preferences";
import { formatTime } from "../format";
import type { Preference } from "../api/types";

type Editing = { mode: "new" } | { mode: "edit"; pref: Preference } | null;

/**
 * The caller's preferences: the ones this UI reads as real controls (PreferenceSettings), and
 * every key as raw JSON in a collapsible Advanced section (create, edit, delete).
 */
export function PreferencesPage() {
  const client = useQueryClient();
  const [editing, setEditing] = useState<Editing>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const prefs = usePreferenceList();
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
        <p className="muted">Your own settings, stored by the app under your user id. Nobody else can read them.</p>
      </header>
      {prefs.isPending ? (
        <Loading label="Loading preferences…" />
      ) : prefs.isError ? (
        <ErrorPanel error={prefs.error} onRetry={() => void prefs.refetch()} />
      ) : (
        <>
          <section className="card" aria-labelledby="settings-h">
            <h2 id="settings-h">Settings</h2>
            <PreferenceSettings items={prefs.data.items} />
          </section>
          <details className="card advanced" data-testid="prefs-advanced">
            <summary>
              <span className="advanced-title">Advanced</span>{" "}
              <span className="muted small">every preference as a key and a JSON value</span>
            </summary>
            <section aria-labelledby="prefs-h">
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
              <p className="muted small">
                Keys start with a lower-case letter; values are any JSON: text in quotes (<code>"dark"</code>), numbers,{" "}
                <code>true</code>/<code>false</code>, lists or objects.
              </p>
              {remove.isError && <ErrorPanel error={remove.error} />}
              {prefs.data.items.length === 0 ? (
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
                          {KNOWN_KEYS.has(p.key) && <span className="muted small"> · also under Settings</span>}
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
          </details>
        </>
      )}
    </div>
  );
}
