-- Argo CD health check for t2t.dev/v1alpha1 MigrationEndpoint (kstatus conventions, docs/operations.md
-- "Argo CD"). TenantPair, MigrationEndpoint and MigrationBatch share this exact logic.
-- Order: spec.suspend -> Suspended; generation ~= status.observedGeneration -> Progressing;
-- Stalled=True -> Degraded; Ready=True -> Healthy; otherwise Progressing with the Ready message.
local hs = {}

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the operator makes no tenant writes"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end
if observed == nil or (generation ~= nil and generation ~= observed) then
  hs.status = "Progressing"
  if observed == nil then
    hs.message = "Waiting for the operator to process the object"
  else
    hs.message = "Waiting for the operator to process generation " .. tostring(generation) ..
      " (observed " .. tostring(observed) .. ")"
  end
  return hs
end

local ready = nil
local stalled = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    elseif condition.type == "Stalled" then
      stalled = condition
    end
  end
end

local function describe(condition)
  local reason = condition.reason or ""
  local message = condition.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if reason ~= "" then
    return reason
  end
  return message
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
